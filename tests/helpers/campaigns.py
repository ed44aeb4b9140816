"""Campaigns as a test drives them: a local system behind an API channel that counts every message
it gets and answers the hub's look-ups, and quick ways to make customers and campaigns."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiohttp import web

from channels.api import signature, signature_is_valid
from tests.conftest import Organization, RunningHub, eventually
from tests.helpers.channels import ApiChannel


@dataclass
class CountingReceiver:
    """Keeps every message by id with its arrival time; answers after a delay drawn from
    `delay`; refuses numbers in `refuse` with 400."""

    url: str = ""
    secrets: set[str] = field(default_factory=set)
    messages: list[dict[str, Any]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    lookups: int = 0
    delay: tuple[float, float] = (0.0, 0.0)
    refuse: set[str] = field(default_factory=set)
    answers_lookups: bool = True  # a system that keeps no record answers look-ups with nothing
    # Where to post a delivery receipt for each message before answering it: (receipts_url, secret).
    receipts_to: tuple[str, str] | None = None

    def ids(self) -> Counter[str]:
        return Counter(m["message_id"] for m in self.messages)

    def to(self, phone: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["to"] == phone]


async def serve_receiver(box: CountingReceiver) -> web.AppRunner:
    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        header = request.headers.get("X-Hub-Signature")
        if not any(signature_is_valid(secret, header, body) for secret in box.secrets):
            return web.Response(status=401)
        payload = json.loads(body)
        if payload["type"] == "message_lookup":
            box.lookups += 1
            if not box.answers_lookups:
                return web.json_response({})
            found = payload["message_id"] in box.ids()
            answer: dict[str, Any] = {"found": found}
            if found:
                answer["external_id"] = f"ext-{payload['message_id']}"
            return web.json_response(answer)
        if payload["type"] != "message":
            return web.json_response({})
        if payload["to"] in box.refuse:
            return web.json_response({"error": "no such number"}, status=400)
        box.messages.append(payload)  # kept on arrival, before the answer: as a real system would
        box.arrivals.append(time.monotonic())
        if box.receipts_to is not None:  # a fast network: delivered before the send is answered
            url, secret = box.receipts_to
            receipt = json.dumps(
                {"external_id": f"ext-{payload['message_id']}", "status": "delivered"}
            ).encode()
            headers = {
                "Content-Type": "application/json",
                "X-Hub-Signature": signature(secret, receipt, int(time.time())),
            }
            async with httpx.AsyncClient(timeout=10) as client:
                await client.post(url, content=receipt, headers=headers)
        low, high = box.delay
        if high:
            await asyncio.sleep(random.uniform(low, high))
        return web.json_response({"external_id": f"ext-{payload['message_id']}"})

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    box.url = f"http://127.0.0.1:{port}/hook"
    return runner


async def api_channel(
    hub: RunningHub, organization: Organization, receiver: CountingReceiver, name: str = "Website"
) -> dict[str, Any]:
    async with hub.client(organization.admin.token) as client:
        created = await client.post(
            "/api/channels", json={"type": "api", "name": name, "webhook_url": receiver.url}
        )
    assert created.status_code == 201, created.text
    receiver.secrets.add(created.json()["secret"])
    return dict(created.json())


def poster(channel: dict[str, Any]) -> ApiChannel:
    """What posts to the channel as the outside system: messages in, receipts."""
    return ApiChannel(channel["id"], channel["inbound_url"], channel["receipts_url"], channel["secret"])


def numbers(prefix: str, count: int) -> list[dict[str, Any]]:
    """`count` customers to create, with phone numbers starting with `prefix`."""
    return [{"name": f"Customer {i}", "phone": f"+9665{prefix}{i:06d}"} for i in range(count)]


async def customers(
    hub: RunningHub, organization: Organization, people: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    made = []
    async with hub.client(organization.admin.token) as client:
        for person in people:
            response = await client.post("/api/crm/customers", json=person)
            assert response.status_code == 201, response.text
            made.append(response.json())
    return made


async def ready_campaign(hub: RunningHub, token: str, body: dict[str, Any]) -> dict[str, Any]:
    """Create a campaign and wait until its recipients are counted."""
    async with hub.client(token) as client:
        created = await client.post("/api/campaigns", json=body)
        assert created.status_code == 201, created.text
        campaign_id = created.json()["id"]

        async def counted() -> dict[str, Any] | None:
            found = (await client.get(f"/api/campaigns/{campaign_id}")).json()
            return found if found["audience_status"] != "building" else None

        return dict(await eventually(counted, within=30))


async def finished(hub: RunningHub, token: str, campaign_id: str, *, within: float = 60) -> dict[str, Any]:
    async with hub.client(token) as client:

        async def done() -> dict[str, Any] | None:
            found = (await client.get(f"/api/campaigns/{campaign_id}")).json()
            return found if found["status"] in ("completed", "cancelled", "paused") else None

        return dict(await eventually(done, within=within, interval=0.1))


async def fast_pacing(hub: RunningHub, token: str, channel_id: str, **rules: Any) -> None:
    async with hub.client(token) as client:
        answer = await client.patch(f"/api/campaigns/pacing/{channel_id}", json=rules)
    assert answer.status_code == 200, answer.text


async def start_campaign(hub: RunningHub, token: str, campaign_id: str) -> None:
    async with hub.client(token) as client:
        answer = await client.post(f"/api/campaigns/{campaign_id}/start")
    assert answer.status_code == 200, answer.text


async def run_campaign(
    hub: RunningHub, token: str, body: dict[str, Any], *, within: float = 60
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Make a campaign, wait for its recipients, start it and wait until it ends: the campaign as
    made (counted) and as it ended."""
    made = await ready_campaign(hub, token, body)
    await start_campaign(hub, token, made["id"])
    return made, await finished(hub, token, made["id"], within=within)
