"""A web process that cannot keep up refuses channel posts at the door: while its event loop runs
late or is busy all the time, or while its database is behind, a signed post is answered 503 with
Retry-After and nothing of it is kept; once the process catches up, the same post is taken, once."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from hub.errors import Busy
from hub.i18n import translate
from tests.conftest import Organization, RunningHub, eventually, make_settings, register, start_hub
from tests.helpers.channels import ApiChannel, make_channel, webhook_receiver
from tests.hub.test_metrics import scrape, value

REFUSALS = "hub_inbound_refusals_total"


async def taken(channel: ApiChannel, external_id: str, text: str) -> httpx.Response | None:
    answer = await channel.send(external_id=external_id, **{"from": "+966561230070"}, text=text)
    return answer if answer.status_code == 202 else None


@contextlib.asynccontextmanager
async def admitting(
    tmp_path: Path, **settings: str
) -> AsyncIterator[tuple[RunningHub, Organization, ApiChannel]]:
    """An embedded hub with these admission settings, an organization and its API channel."""
    hub = await start_hub(make_settings(tmp_path, **settings), kind="sqlite")
    try:
        organization = await register(hub)
        async with webhook_receiver() as receiver:
            yield hub, organization, await make_channel(hub, organization, receiver)
    finally:
        await hub.stop()


async def texts(hub: RunningHub, organization: Organization, chat: str) -> list[str]:
    """The texts of a conversation's messages, as its organization's admin reads them."""
    async with hub.client(organization.admin.token) as client:
        page = (await client.get(f"/api/inbox/conversations/{chat}/messages")).json()
    return [m["text"] for m in page["items"]]


async def test_a_late_event_loop_refuses_posts_until_it_catches_up(tmp_path: Path) -> None:
    async with admitting(tmp_path, HUB_INBOUND_MAX_LAG_MS="100") as (hub, organization, channel):
        first = await eventually(lambda: taken(channel, "lag-1", "before"))
        chat = first.json()["conversation_id"]

        # The process falls behind: its event loop (this test shares it) is held for 0.3 s, as a
        # burst of work would hold it.
        before = value(await scrape(hub), REFUSALS, reason="loop_lag")
        time.sleep(0.3)  # noqa: ASYNC251 - blocking the loop is the point
        refused = await channel.send(external_id="lag-2", **{"from": "+966561230070"}, text="during")
        assert refused.status_code == 503, refused.text
        # The operators see why: the loop's lag, counted by its name.
        assert value(await scrape(hub), REFUSALS, reason="loop_lag") == before + 1
        assert int(refused.headers["Retry-After"]) >= 1
        assert "during" not in await texts(hub, organization, chat)  # refused: nothing of it is kept
        assert hub.runtime.inbound_gate.refused >= 1

        # On time again (the lag counts for half a second): the sender posts again, it is taken,
        # and a repeat of it is the same message.
        await asyncio.sleep(0.6)
        await eventually(lambda: taken(channel, "lag-2", "during"))
        await eventually(lambda: taken(channel, "lag-2", "during"))
        assert (await texts(hub, organization, chat)).count("during") == 1


async def test_a_loop_busy_all_the_time_refuses_posts_though_it_runs_on_time(tmp_path: Path) -> None:
    async with admitting(tmp_path, HUB_INBOUND_MAX_BUSY_PERCENT="60", HUB_INBOUND_MAX_LAG_MS="5000") as (
        hub,
        organization,
        channel,
    ):
        first = await eventually(lambda: taken(channel, "busy-1", "before"))
        chat = first.json()["conversation_id"]

        # Work that keeps the loop's thread busy in short pieces: every callback still runs on
        # time, so only the busy share says the process is full.
        working = True

        async def keep_busy() -> None:
            while working:
                until = time.perf_counter() + 0.004
                while time.perf_counter() < until:
                    pass
                await asyncio.sleep(0)

        before = value(await scrape(hub), REFUSALS, reason="loop_busy")
        worker = asyncio.create_task(keep_busy())
        try:
            await eventually(lambda: hub.runtime.loop_lag.busy > 0.8 or None)
            refused = await channel.send(external_id="busy-2", **{"from": "+966561230072"}, text="busy")
        finally:
            working = False
            await worker
        assert refused.status_code == 503, refused.text
        assert hub.runtime.loop_lag.seconds < 5  # on time: it was the busy share that refused
        assert value(await scrape(hub), REFUSALS, reason="loop_busy") == before + 1

        await eventually(lambda: taken(channel, "busy-2", "busy"))
        assert (await texts(hub, organization, chat)).count("busy") == 1


async def test_a_process_behind_on_its_database_refuses_posts_at_the_door(tmp_path: Path) -> None:
    async with admitting(tmp_path, HUB_INBOUND_MAX_WAIT_MS="200", HUB_INBOUND_MAX_LAG_MS="5000") as (
        hub,
        organization,
        channel,
    ):
        first = await eventually(lambda: taken(channel, "wait-1", "before"))
        chat = first.json()["conversation_id"]

        # The embedded database's one connection is busy (as a burst of work would keep it). A
        # post that comes while nothing queues for it is taken, and waits its turn; one that comes
        # once that post has waited longer than the bound is refused at once, while the
        # connection is still busy: a refusal costs the database nothing.
        before = value(await scrape(hub), REFUSALS, reason="database_wait")
        async with hub.runtime.db.engine.connect():
            in_line = asyncio.create_task(
                channel.send(external_id="wait-2", **{"from": "+966561230070"}, text="in line")
            )
            await eventually(lambda: hub.runtime.db.queue_wait > 0.25 or None)
            refused = await asyncio.wait_for(
                channel.send(external_id="wait-3", **{"from": "+966561230070"}, text="behind"), 5
            )
            assert not in_line.done()  # answered while the database was still busy
        assert refused.status_code == 503, refused.text
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.json() == {
            "status_code": 503,
            "detail": translate("ar", Busy.default_message),  # the organization's default language
        }
        assert (await in_line).status_code == 202
        assert value(await scrape(hub), REFUSALS, reason="database_wait") == before + 1

        # Caught up: the sender posts the refused one again and it is taken, once.
        await eventually(lambda: taken(channel, "wait-3", "behind"))
        await eventually(lambda: taken(channel, "wait-3", "behind"))
        stored = await texts(hub, organization, chat)
        assert stored.count("in line") == 1
        assert stored.count("behind") == 1


async def test_a_post_that_waited_too_long_for_its_turn_is_refused(tmp_path: Path) -> None:
    async with admitting(tmp_path, HUB_INBOUND_MAX_WAIT_MS="200", HUB_INBOUND_MAX_LAG_MS="5000") as (
        hub,
        organization,
        channel,
    ):
        # A channel the process has not read yet: its post reads it, and waits for the database's
        # one connection (busy for half a second) before its turn.
        before = value(await scrape(hub), REFUSALS, reason="waited")
        async with hub.runtime.db.engine.connect():
            waiting = asyncio.create_task(
                channel.send(external_id="late-1", **{"from": "+966561230071"}, text="late")
            )
            await asyncio.sleep(0.5)
        refused = await waiting
        assert refused.status_code == 503, refused.text
        assert value(await scrape(hub), REFUSALS, reason="waited") == before + 1

        first = await eventually(lambda: taken(channel, "late-1", "late"))
        assert (await texts(hub, organization, first.json()["conversation_id"])).count("late") == 1
