"""Channels as the outside system sees them: a local webhook receiver that keeps what the hub posts,
API channels that sign their posts, and small real files to send."""

from __future__ import annotations

import contextlib
import json
import struct
import time
import uuid
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx
from aiohttp import web

from channels.api import signature, signature_is_valid

if TYPE_CHECKING:
    from tests.conftest import Organization, RunningHub

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@dataclass
class Receiver:
    """A local webhook endpoint that keeps what the hub posts, checking each signature."""

    url: str = ""
    secret: str = ""
    posts: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0
    answer_status: int = 200

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [p for p in self.posts if p.get("type") == kind]


@contextlib.asynccontextmanager
async def webhook_receiver() -> AsyncIterator[Receiver]:
    """A `Receiver` served on a free local port (its `url`), and a file to download beside it."""
    box = Receiver()

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        if box.secret and not signature_is_valid(box.secret, request.headers.get("X-Hub-Signature"), body):
            box.bad_signatures += 1
            return web.Response(status=401)
        if box.answer_status != 200:
            return web.Response(status=box.answer_status)
        payload = json.loads(body)
        box.posts.append(payload)
        return web.json_response(
            {"external_id": f"ext-{payload.get('message_id')}"} if payload["type"] == "message" else {}
        )

    async def serve_file(_request: web.Request) -> web.Response:
        return web.Response(body=PDF, content_type="application/pdf")

    app = web.Application()
    app.router.add_post("/hook", handle)
    app.router.add_get("/files/contract.pdf", serve_file)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    box.url = f"http://127.0.0.1:{port}/hook"
    yield box
    await runner.cleanup()


@dataclass
class ApiChannel:
    id: str
    inbound_url: str
    receipts_url: str
    secret: str

    async def post(
        self,
        url: str,
        payload: dict[str, Any],
        *,
        stale: bool = False,
        secret: str | None = None,
        signed: bool = True,
    ) -> httpx.Response:
        body = json.dumps(payload).encode()
        moment = int(time.time()) - (400 if stale else 0)
        headers = {"Content-Type": "application/json"}
        if signed:
            headers["X-Hub-Signature"] = signature(secret or self.secret, body, moment)
        async with httpx.AsyncClient(timeout=30) as client:
            return await client.post(url, content=body, headers=headers)

    async def send(self, **payload: Any) -> httpx.Response:
        return await self.post(self.inbound_url, payload)


async def channel_posting_to(
    hub: RunningHub, token: str, webhook_url: str, name: str = "Website"
) -> ApiChannel:
    """A new API channel whose replies go to `webhook_url`, made by the holder of `token`."""
    async with hub.client(token) as client:
        created = await client.post(
            "/api/channels", json={"type": "api", "name": name, "webhook_url": webhook_url}
        )
    assert created.status_code == 201, created.text
    body = created.json()
    return ApiChannel(
        id=body["id"],
        inbound_url=body["inbound_url"],
        receipts_url=body["receipts_url"],
        secret=body["secret"],
    )


async def make_channel(hub: RunningHub, organization: Organization, receiver: Receiver) -> ApiChannel:
    channel = await channel_posting_to(hub, organization.admin.token, receiver.url)
    receiver.secret = channel.secret
    return channel


def tiny_png() -> bytes:
    """A real 1×1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


async def paired_by_a_scan(database: str, profile_id: uuid.UUID) -> None:
    """What a phone's scan leaves in a hub on PostgreSQL (`database` is the owner's address): the
    device in the WhatsApp store (keys of the right sizes; the store's tables exist once neonize
    opened it), and the profile paired with that device's JID."""
    from tests.conftest import _asyncpg_dsn

    connection = await asyncpg.connect(_asyncpg_dsn(database))
    try:
        await connection.execute(
            "INSERT INTO whatsapp.whatsmeow_device (jid, registration_id, noise_key, identity_key,"
            " signed_pre_key, signed_pre_key_id, signed_pre_key_sig, adv_key, adv_details,"
            " adv_account_sig, adv_account_sig_key, adv_device_sig, push_name)"
            " VALUES ($1, 4242, $2, $2, $2, 1, $3, $2, $4, $3, $2, $3, 'Shop line')",
            "966500000042:7@s.whatsapp.net",
            bytes(range(32)),
            bytes(range(64)),
            b"\x00",
        )
        await connection.execute(
            """UPDATE channels SET config = config || jsonb_build_object('paired', true, 'device', $2::jsonb)
            WHERE id = $1""",
            profile_id,
            '{"user": "966500000042", "agent": 0, "device": 7, "server": "s.whatsapp.net"}',
        )
    finally:
        await connection.close()
