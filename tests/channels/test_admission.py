"""A web process that cannot keep up refuses channel posts at the edge: while its event loop runs
late, a signed post is answered 503 with Retry-After and nothing of it is kept; once the loop is
on time again, the same post is taken, once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from tests.conftest import eventually, make_settings, register, start_hub
from tests.helpers.channels import ApiChannel, make_channel, webhook_receiver
from tests.hub.test_metrics import scrape, value

REFUSALS = "hub_inbound_refusals_total"


async def taken(channel: ApiChannel, external_id: str, text: str) -> httpx.Response | None:
    answer = await channel.send(external_id=external_id, **{"from": "+966561230070"}, text=text)
    return answer if answer.status_code == 202 else None


async def test_a_late_event_loop_refuses_posts_until_it_catches_up(tmp_path: Path) -> None:
    hub = await start_hub(make_settings(tmp_path, HUB_INBOUND_MAX_LAG_MS="100"), kind="sqlite")
    try:
        organization = await register(hub)
        async with webhook_receiver() as receiver:
            channel = await make_channel(hub, organization, receiver)
            first = await eventually(lambda: taken(channel, "lag-1", "before"))
            chat = first.json()["conversation_id"]

            # The process falls behind: its event loop (this test shares it) is held for 0.3 s,
            # as a burst of work would hold it.
            before = value(await scrape(hub), REFUSALS, reason="loop_lag")
            time.sleep(0.3)  # noqa: ASYNC251 - blocking the loop is the point
            refused = await channel.send(external_id="lag-2", **{"from": "+966561230070"}, text="during")
            assert refused.status_code == 503, refused.text
            # The operators see why: the loop's lag, counted by its name.
            assert value(await scrape(hub), REFUSALS, reason="loop_lag") == before + 1
            assert int(refused.headers["Retry-After"]) >= 1
            async with hub.client(organization.admin.token) as client:
                page = (await client.get(f"/api/inbox/conversations/{chat}/messages")).json()
            assert "during" not in [m["text"] for m in page["items"]]  # refused: nothing of it is kept
            assert hub.runtime.inbound_gate.refused >= 1

            # On time again (the lag counts for half a second): the sender posts again, it is
            # taken, and a repeat of it is the same message.
            await asyncio.sleep(0.6)
            await eventually(lambda: taken(channel, "lag-2", "during"))
            await eventually(lambda: taken(channel, "lag-2", "during"))
            async with hub.client(organization.admin.token) as client:
                page = (await client.get(f"/api/inbox/conversations/{chat}/messages")).json()
            assert [m["text"] for m in page["items"]].count("during") == 1
    finally:
        await hub.stop()


async def test_a_process_behind_on_its_database_refuses_posts_that_waited_too_long(tmp_path: Path) -> None:
    hub = await start_hub(
        make_settings(tmp_path, HUB_INBOUND_MAX_WAIT_MS="200", HUB_INBOUND_MAX_LAG_MS="5000"), kind="sqlite"
    )
    try:
        organization = await register(hub)
        async with webhook_receiver() as receiver:
            channel = await make_channel(hub, organization, receiver)
            first = await eventually(lambda: taken(channel, "wait-1", "before"))
            chat = first.json()["conversation_id"]

            # The embedded database's one connection is busy for half a second (as a burst of
            # work would keep it): a post that came meanwhile has waited too long by its turn.
            samples = await scrape(hub)
            before = sum(value(samples, REFUSALS, reason=r) for r in ("waited", "database_wait"))
            async with hub.runtime.db.engine.connect():
                waiting = asyncio.create_task(
                    channel.send(external_id="wait-2", **{"from": "+966561230070"}, text="during")
                )
                await asyncio.sleep(0.5)
            refused = await waiting
            assert refused.status_code == 503, refused.text
            assert int(refused.headers["Retry-After"]) >= 1
            samples = await scrape(hub)
            after = sum(value(samples, REFUSALS, reason=r) for r in ("waited", "database_wait"))
            assert after == before + 1

            # Caught up: the sender posts again and it is taken, once.
            await eventually(lambda: taken(channel, "wait-2", "during"))
            async with hub.client(organization.admin.token) as client:
                page = (await client.get(f"/api/inbox/conversations/{chat}/messages")).json()
            assert [m["text"] for m in page["items"]].count("during") == 1
    finally:
        await hub.stop()
