"""Replies on their way out, when the receiving system misbehaves: it hangs, it drops the
connection after reading, it answers an id it already gave. No reply is sent twice, none is
lost, and no tenant's slow receiver holds anyone else's traffic."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
import pytest
from aiohttp import web

from inbox import services
from tests.conftest import RunningHub, eventually, one_route_app, register, serve_web_app
from tests.helpers.channels import ApiChannel, channel_posting_to


@dataclass
class Misbehaving:
    """A webhook receiver whose manners the test sets."""

    url: str = ""
    mode: str = "ok"  # ok, reset (reads, then drops the connection), hang
    answers_lookups: bool = True
    fixed_external_id: str | None = None
    received: list[str] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)
    hanging: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def misbehaving() -> AsyncIterator[Misbehaving]:
    box = Misbehaving()

    async def handle(request: web.Request) -> web.StreamResponse:
        payload = json.loads(await request.read())
        if payload["type"] == "message_lookup":
            box.lookups.append(payload["message_id"])
            if not box.answers_lookups:
                return web.Response(status=404)
            return web.json_response({"found": payload["message_id"] in box.received})
        if payload["type"] != "message":
            return web.json_response({})
        if box.mode == "hang":
            box.hanging += 1  # requests open now: one the hub gave up on is cancelled here too
            try:
                await box.release.wait()
            finally:
                box.hanging -= 1
            return web.json_response({})
        box.received.append(payload["message_id"])
        if box.mode == "reset":
            assert request.transport is not None
            request.transport.abort()  # it read the message, then the answer is lost
            return web.Response(status=200)
        return web.json_response({"external_id": box.fixed_external_id or f"ext-{payload['message_id']}"})

    runner, address = await serve_web_app(one_route_app("/hook", handle), cancel_on_disconnect=True)
    box.url = f"{address}/hook"
    yield box
    box.release.set()
    await runner.cleanup()


async def conversation_with(channel: ApiChannel, phone: str) -> str:
    posted = await channel.send(external_id=f"in-{phone}", **{"from": phone}, text="hello")
    assert posted.status_code == 202, posted.text
    return str(posted.json()["conversation_id"])


async def reply_many(hub: RunningHub, token: str, conversations: list[str], each: int) -> list[str]:
    ids = []
    async with hub.client(token) as client:
        for conversation in conversations:
            for number in range(each):
                sent = await client.post(
                    f"/api/inbox/conversations/{conversation}/messages", json={"text": f"answer {number}"}
                )
                assert sent.status_code == 201, sent.text
                ids.append(sent.json()["id"])
    return ids


async def statuses(hub: RunningHub, token: str, conversations: list[str]) -> dict[str, str]:
    found = {}
    async with hub.client(token) as client:
        for conversation in conversations:
            items = (
                await client.get(f"/api/inbox/conversations/{conversation}/messages", params={"limit": 200})
            ).json()["items"]
            found |= {m["id"]: m["status"] for m in items if m["direction"] == "outbound"}
    return found


async def test_a_reply_whose_answer_was_lost_is_settled_never_resent_blind(
    hub: RunningHub, misbehaving: Misbehaving
) -> None:
    organization = await register(hub)
    channel = await channel_posting_to(hub, organization.admin.token, misbehaving.url)
    conversations = [await conversation_with(channel, f"+9665011100{n:02d}") for n in range(5)]
    misbehaving.mode = "reset"
    ids = await reply_many(hub, organization.admin.token, conversations, each=8)

    async def settled() -> dict[str, str] | None:
        found = await statuses(hub, organization.admin.token, conversations)
        return found if all(found[i] == "sent" for i in ids) else None

    await eventually(settled, within=60)
    # Every reply reached the customer once: the lost answers were settled by asking.
    assert Counter(misbehaving.received) == Counter(dict.fromkeys(ids, 1))
    assert set(misbehaving.lookups) == set(ids)


async def test_a_channel_that_cannot_tell_leaves_the_reply_unknown(
    hub: RunningHub, misbehaving: Misbehaving
) -> None:
    organization = await register(hub)
    channel = await channel_posting_to(hub, organization.admin.token, misbehaving.url)
    conversation = await conversation_with(channel, "+966501110200")
    misbehaving.mode, misbehaving.answers_lookups = "reset", False
    ids = await reply_many(hub, organization.admin.token, [conversation], each=3)

    async def unknown() -> dict[str, str] | None:
        found = await statuses(hub, organization.admin.token, [conversation])
        return found if all(found[i] == "unknown" for i in ids) else None

    await eventually(unknown, within=30)
    async with hub.client(organization.admin.token, language="en") as client:
        items = (await client.get(f"/api/inbox/conversations/{conversation}/messages")).json()["items"]
    assert {m["failure_reason"] for m in items if m["id"] in ids} == {services.IN_DOUBT}
    # The sweep of stalled replies leaves them alone: nobody is messaged twice.
    await services.requeue_stalled(hub.runtime, older_than=timedelta(0))
    await asyncio.sleep(0.5)
    assert Counter(misbehaving.received) == Counter(dict.fromkeys(ids, 1))


async def test_an_external_id_the_channel_gave_before_does_not_start_a_resend_loop(
    hub: RunningHub, misbehaving: Misbehaving
) -> None:
    organization = await register(hub)
    channel = await channel_posting_to(hub, organization.admin.token, misbehaving.url)
    conversation = await conversation_with(channel, "+966501110300")
    misbehaving.fixed_external_id = "the-same-id"
    ids = await reply_many(hub, organization.admin.token, [conversation], each=3)

    async def all_sent() -> dict[str, str] | None:
        found = await statuses(hub, organization.admin.token, [conversation])
        return found if all(found[i] == "sent" for i in ids) else None

    await eventually(all_sent)
    await services.requeue_stalled(hub.runtime, older_than=timedelta(0))
    await asyncio.sleep(0.5)
    assert Counter(misbehaving.received) == Counter(dict.fromkeys(ids, 1))
    async with hub.client(organization.admin.token) as client:
        items = (await client.get(f"/api/inbox/conversations/{conversation}/messages")).json()["items"]
    external = [m["external_id"] for m in items if m["id"] in ids]
    assert external.count("the-same-id") == 1
    assert len(set(external)) == 3


@pytest.mark.slow
async def test_a_hanging_receiver_holds_no_other_organizations_traffic(
    hub: RunningHub, misbehaving: Misbehaving, public_receiver_url: str
) -> None:
    slow_tenant, other_tenant = await register(hub), await register(hub)
    slow_channel = await channel_posting_to(hub, slow_tenant.admin.token, misbehaving.url)
    conversations = [await conversation_with(slow_channel, f"+9665011104{n:02d}") for n in range(10)]
    misbehaving.mode = "hang"
    ids = await reply_many(hub, slow_tenant.admin.token, conversations, each=10)  # 100 replies, stuck
    await eventually(lambda: misbehaving.hanging >= hub.settings.outbound_per_channel)
    await asyncio.sleep(0.5)
    # The stuck replies hold only their own channel's slots: no more are open at once.
    assert misbehaving.hanging <= hub.settings.outbound_per_channel
    other_channel = await channel_posting_to(hub, other_tenant.admin.token, public_receiver_url)
    answers = []
    async with httpx.AsyncClient(base_url=hub.url, timeout=10) as client:
        for n in range(20):
            answers.append(
                (
                    await other_channel.send(external_id=f"o-{n}", **{"from": "+96650111999"}, text="hi")
                ).status_code
            )
            answers.append((await client.get("/health")).status_code)
    assert answers == [202, 200] * 20
    assert misbehaving.hanging <= hub.settings.outbound_per_channel
    # When the receiver comes back, every reply goes out.
    misbehaving.mode = "ok"
    misbehaving.release.set()

    async def all_sent() -> bool:
        found = await statuses(hub, slow_tenant.admin.token, conversations)
        return all(found[i] == "sent" for i in ids)

    await eventually(all_sent, within=60)
