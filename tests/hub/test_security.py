"""What a hostile tenant or outsider tries, tried through the API as they would: active content on
the hub's origin, calls into the hub's own network, forged Host headers, and slow posts that
would hold other organizations' traffic.

The hubs here run with the guard as production has it: only 127.0.0.2 is allowed (it stands in
for a public server), and 127.0.0.1 is the hub's "internal network", where a local server plays
an internal service that must never be reached.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import uuid
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio
from aiohttp import web

from channels.api import signature
from hub.outbound import GENERIC_FAILURE
from tests.conftest import (
    RunningHub,
    eventually,
    make_settings,
    one_route_app,
    register,
    serve_web_app,
    start_hub,
)
from tests.helpers.channels import PDF, channel_posting_to, tiny_png

PUBLIC_STAND_IN = "127.0.0.2"


@dataclass
class Server:
    """A small HTTP server on one loopback address: what it was asked, and what it answers."""

    host: str
    url: str = ""
    requests: list[str] = field(default_factory=list)
    posts: list[dict[str, Any]] = field(default_factory=list)
    answer: Any = None
    runner: web.AppRunner | None = None


async def serve_on(host: str, *, redirect_to: str | None = None) -> Server:
    server = Server(host=host)

    async def anything(request: web.Request) -> web.StreamResponse:
        server.requests.append(f"{request.method} {request.path}")
        if redirect_to is not None:
            raise web.HTTPFound(redirect_to)
        if request.method == "POST":
            payload = json.loads(await request.read())
            server.posts.append(payload)
            answer = server.answer if server.answer is not None else {}
            return web.json_response(answer(payload) if callable(answer) else answer)
        if request.path.endswith(".pdf"):
            return web.Response(body=PDF, content_type="application/pdf")
        return web.Response(text="internal secrets")

    server.runner, server.url = await serve_web_app(one_route_app("/{tail:.*}", anything, "*"), host)
    return server


@pytest.fixture
async def internal() -> AsyncIterator[Server]:
    """An internal service on the hub's own network (loopback), which no tenant may reach."""
    server = await serve_on("127.0.0.1")
    yield server
    assert server.runner is not None
    await server.runner.cleanup()


@pytest.fixture
async def public() -> AsyncIterator[Server]:
    """A server the guard lets the hub call, standing in for one on the internet."""
    server = await serve_on(PUBLIC_STAND_IN)
    yield server
    assert server.runner is not None
    await server.runner.cleanup()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
async def guarded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningHub]:
    """A hub whose outbound guard allows only the public stand-in, with a short body deadline
    (long enough that the slow bodies below still hold their slots on a busy machine)."""
    tmp = tmp_path_factory.mktemp(f"guarded-{request.param}")
    environ = {
        "HUB_OUTBOUND_ALLOW": f"{PUBLIC_STAND_IN}/32",
        "HUB_INBOUND_BODY_SECONDS": "10",
        "HUB_INBOUND_MAX_PENDING": "8",
    }
    if request.param == "postgres":
        environ |= {
            "DATABASE_URL": request.getfixturevalue("postgres_database"),
            "REDIS_URL": request.getfixturevalue("redis_url"),
            "HUB_MIGRATE_ON_START": "true",
        }
    running = await start_hub(
        make_settings(tmp, **environ), kind=request.param, in_process_worker=request.param == "postgres"
    )
    yield running
    await running.stop()


def zip_file(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# 1. Files are never active content on the hub's origin.

HTML = b"<html><script>fetch('/api/users/me',{headers:{authorization:localStorage.token}})</script></html>"


async def test_uploads_take_a_type_from_their_bytes_and_are_served_inert(
    guarded: RunningHub, public: Server
) -> None:
    org = await register(guarded)
    cases = [
        # (bytes, declared type, stored type, shown in the page)
        (zip_file({"index.html": HTML}), "application/zip,text/html", "application/zip", False),
        (
            zip_file({"word/document.xml": b"<w:document/>", "[Content_Types].xml": b"<Types/>"}),
            "text/html",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            False,
        ),
        (
            zip_file({"mimetype": b"application/vnd.oasis.opendocument.text"}),
            "application/vnd.oasis.opendocument.text;text/html",
            "application/vnd.oasis.opendocument.text",
            False,
        ),
        (HTML, "text/plain", "text/plain", False),
        (PDF, "text/html", "application/pdf", False),
        (tiny_png(), "text/html", "image/png", True),
    ]
    async with guarded.client(org.admin.token) as client, httpx.AsyncClient() as anonymous:
        for data, declared, stored, inline in cases:
            uploaded = await client.post("/api/media", files={"data": ("f", data, declared)})
            assert uploaded.status_code == 201, uploaded.text
            media = uploaded.json()
            assert media["content_type"] == stored, declared
            served = await anonymous.get(media["url"])
            assert served.status_code == 200
            assert served.content == data
            assert served.headers["content-type"].split(";")[0] == stored
            assert served.headers["x-content-type-options"] == "nosniff"
            assert served.headers["content-security-policy"] == "sandbox; default-src 'none'"
            disposition = served.headers["content-disposition"]
            assert disposition.startswith("inline" if inline else "attachment"), (stored, disposition)
        refused = await client.post("/api/media", files={"data": ("page.html", HTML, "text/html")})
        assert refused.status_code == 415
        assert refused.json()["errors"][0]["field"] == "content_type"

    # The same holds for what a channel brings in (here inline, declared as a web page).
    channel = await channel_posting_to(guarded, org.admin.token, f"{public.url}/hook")
    posted = await channel.send(
        external_id="zip-1",
        **{"from": "+96599111222"},
        attachments=[
            {
                "data_base64": base64.b64encode(zip_file({"a.html": HTML})).decode(),
                "content_type": "application/zip,text/html",
            }
        ],
    )
    assert posted.status_code == 202, posted.text
    async with guarded.client(org.admin.token) as client:
        messages = (
            await client.get(f"/api/inbox/conversations/{posted.json()['conversation_id']}/messages")
        ).json()["items"]
    attachment = messages[0]["attachments"][0]
    assert attachment["content_type"] == "application/zip"


# 2. One guarded client for every address a tenant or a customer gives.

INTERNAL_FORMS = [
    "http://127.0.0.1:{port}/hook",
    "http://localhost:{port}/hook",
    "http://[::1]:{port}/hook",
    "http://[::ffff:127.0.0.1]:{port}/hook",
    "http://0x7f000001:{port}/hook",
    "http://2130706433:{port}/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://10.0.0.1/hook",
    "http://[fd00::1]/hook",
    "http://100.64.0.1/hook",
    "http://0.0.0.0:{port}/hook",
    "http://user:pass@127.0.0.2/hook",
]


async def test_a_webhook_into_the_hubs_network_is_refused_when_saved(
    guarded: RunningHub, internal: Server
) -> None:
    org = await register(guarded)
    port = internal.url.rsplit(":", 1)[1]
    async with guarded.client(org.admin.token) as client:
        for form in INTERNAL_FORMS:
            refused = await client.post(
                "/api/channels",
                json={"type": "api", "name": "Probe", "webhook_url": form.format(port=port)},
            )
            assert refused.status_code == 400, (form, refused.text)
            assert refused.json()["errors"][0]["field"] == "webhook_url"
    assert internal.requests == []


async def test_attachment_urls_never_reach_the_hubs_network(
    guarded: RunningHub, internal: Server, public: Server
) -> None:
    org = await register(guarded)
    channel = await channel_posting_to(guarded, org.admin.token, f"{public.url}/hook")
    redirector = await serve_on(PUBLIC_STAND_IN, redirect_to=f"{internal.url}/files/a.pdf")
    try:
        for position, url in enumerate(
            [
                f"{internal.url}/files/a.pdf",
                internal.url.replace("127.0.0.1", "localhost") + "/files/a.pdf",
                f"{redirector.url}/files/a.pdf",  # a public server that sends the hub inside
            ]
        ):
            posted = await channel.send(
                external_id=f"probe-{position}",
                **{"from": "+96599111333"},
                attachments=[{"url": url, "content_type": "application/pdf"}],
            )
            assert posted.status_code == 400, (url, posted.text)
            assert posted.json()["errors"][0]["field"] == "attachments.0.url"
        assert redirector.requests == ["GET /files/a.pdf"]
        assert internal.requests == []
        # A public one is fetched.
        fetched = await channel.send(
            external_id="ok-1",
            **{"from": "+96599111333"},
            attachments=[{"url": f"{public.url}/files/a.pdf", "content_type": "application/pdf"}],
        )
        assert fetched.status_code == 202, fetched.text
    finally:
        assert redirector.runner is not None
        await redirector.runner.cleanup()


async def test_a_webhook_already_pointing_inside_fails_with_the_generic_reason(
    guarded: RunningHub, internal: Server, public: Server
) -> None:
    """A channel saved before the guard (or whose name now leads inside) is refused at send time,
    and nothing the tenant sees tells a closed port from an open one."""
    from channels.models import Channel

    org = await register(guarded)
    channels = [await channel_posting_to(guarded, org.admin.token, f"{public.url}/hook") for _ in range(3)]
    closed_port = internal.url.rsplit(":", 1)[0] + ":9"  # nothing listens on the discard port
    targets = [f"{internal.url}/hook", f"{closed_port}/hook", f"http://{PUBLIC_STAND_IN}:9/hook"]
    async with guarded.runtime.db.session(org.id) as session:
        for channel, target in zip(channels, targets, strict=True):
            row = await session.get_one(Channel, uuid.UUID(channel.id))
            row.config = {"webhook_url": target}
        await session.commit()
    reasons = []
    for position, channel in enumerate(channels):
        stored = (
            await channel.send(external_id=f"in-{position}", **{"from": "+96599111444"}, text="hi")
        ).json()
        async with guarded.client(org.admin.token) as client:
            sent = await client.post(
                f"/api/inbox/conversations/{stored['conversation_id']}/messages", json={"text": "hello"}
            )
            assert sent.status_code == 201, sent.text

            async def reason(conversation: str = stored["conversation_id"]) -> str | None:
                items = (await client.get(f"/api/inbox/conversations/{conversation}/messages")).json()[
                    "items"
                ]
                return items[0]["failure_reason"]

            reasons.append(await eventually(reason))
    assert reasons == [GENERIC_FAILURE] * 3
    assert internal.requests == []


async def test_a_receiving_systems_answer_is_kept_only_as_a_plain_id(
    guarded: RunningHub, public: Server
) -> None:
    org = await register(guarded)
    channel = await channel_posting_to(guarded, org.admin.token, f"{public.url}/hook")
    answers = iter(
        [{"external_id": "<script>x</script>"}, {"external_id": "x" * 5000}, {"external_id": "ok-42"}]
    )
    public.answer = lambda _payload: next(answers)
    stored = (await channel.send(external_id="in-a", **{"from": "+96599111555"}, text="hi")).json()
    conversation = stored["conversation_id"]
    async with guarded.client(org.admin.token) as client:
        sent = []
        for text in ("one", "two", "three"):
            answer = await client.post(
                f"/api/inbox/conversations/{conversation}/messages", json={"text": text}
            )
            sent.append(answer.json()["id"])
            await eventually(lambda n=len(sent): len(public.posts) >= n)

        async def external_ids() -> list[str] | None:
            items = (await client.get(f"/api/inbox/conversations/{conversation}/messages")).json()["items"]
            outbound = {m["id"]: m for m in items if m["direction"] == "outbound"}
            if any(outbound[i]["status"] != "sent" for i in sent):
                return None
            return [outbound[i]["external_id"] for i in sent]

        assert await eventually(external_ids) == [sent[0], sent[1], "ok-42"]


# 3. Links come from HUB_PUBLIC_URL, never from the Host header.


async def test_a_forged_host_is_refused_and_links_use_the_public_address(guarded: RunningHub) -> None:
    org = await register(guarded)
    async with httpx.AsyncClient(base_url=guarded.url) as client:
        forged = await client.post(
            "/api/auth/forgot-password", json={"email": org.admin.email}, headers={"Host": "evil.example"}
        )
        assert forged.status_code == 400
        assert forged.json()["errors"][0]["field"] == "Host"
        me = await client.get("/api/users/me", headers={"Host": "evil.example:8000"})
        assert me.status_code == 400
        # A load balancer asks for health by address: that answers, and makes no link.
        health = await client.get("/health", headers={"Host": "10.0.0.7:8000"})
        assert health.status_code == 200
    # A name the hub answers on, other than the public one, still makes public links.
    other = guarded.url.replace("127.0.0.1", "localhost")
    async with httpx.AsyncClient(
        base_url=other, headers={"Authorization": f"Bearer {org.admin.token}"}
    ) as client:
        invited = await client.post("/api/users/invite", json={"email": "x@example.test", "role": "agent"})
        assert invited.status_code == 201, invited.text
        assert invited.json()["invitation_url"].startswith(f"{guarded.settings.public_url}/")
        channel = await client.post(
            "/api/channels", json={"type": "api", "name": "A", "webhook_url": f"http://{PUBLIC_STAND_IN}/h"}
        )
        assert channel.json()["inbound_url"].startswith(f"{guarded.settings.public_url}/api/channels/")
    sio = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(
            guarded.url,
            auth={"token": org.admin.token},
            headers={"Host": "evil.example"},
            transports=["websocket"],
            wait_timeout=5,
        )


def test_scaled_mode_requires_a_public_url(tmp_path: Path) -> None:
    from hub.config import Settings, SettingsError

    with pytest.raises(SettingsError, match="HUB_PUBLIC_URL"):
        Settings.from_env(
            {
                "HUB_DATA_DIR": str(tmp_path),
                "REDIS_URL": "redis://127.0.0.1:6379/0",
                "HUB_SECRET_KEY": "s" * 40,
            },
            read_dotenv=False,
        )


# 4. No unauthenticated request stops other organizations' traffic.


async def slow_post(hub: RunningHub, path: str, declared_length: int = 100_000) -> asyncio.StreamWriter:
    """Open a post that declares a body and sends only its first bytes."""
    host, port = hub.url.removeprefix("http://").split(":")
    _reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {declared_length}\r\n\r\n{{".encode()
    )
    await writer.drain()
    return writer


async def test_slow_posts_hold_no_other_organizations_traffic(guarded: RunningHub, public: Server) -> None:
    victim, ours = await register(guarded), await register(guarded)
    victims_channel = await channel_posting_to(guarded, victim.admin.token, f"{public.url}/hook")
    our_channel = await channel_posting_to(guarded, ours.admin.token, f"{public.url}/hook")
    limit = guarded.settings.inbound_max_pending
    slow = [await slow_post(guarded, f"/api/channels/{uuid.uuid4()}/inbound") for _ in range(limit * 2)]
    slow += [
        await slow_post(guarded, f"/api/channels/{victims_channel.id}/inbound") for _ in range(limit * 2)
    ]
    # Every slot of the victim's channel is held by a slow body (the rest were turned away).
    victim_id = uuid.UUID(victims_channel.id)
    await eventually(lambda: guarded.runtime.channel_gates.pending.get(victim_id) == limit)
    try:
        # Unknown channels are answered before their bodies; the victim's own slots are full, but
        # another organization's signed posts are taken.
        for position in range(5):
            answer = await our_channel.send(
                external_id=f"ok-{position}", **{"from": "+96599000111"}, text="hi"
            )
            assert answer.status_code == 202, answer.text
        busy = await victims_channel.send(external_id="v-1", **{"from": "+96599000222"}, text="hi")
        assert busy.status_code == 503
        assert "retry-after" in busy.headers
    finally:
        for writer in slow:
            writer.close()

    # The held bodies ran out of time and let go (408), so the victim's posts are taken again.
    async def victim_taken() -> bool:
        answer = await victims_channel.send(external_id="v-2", **{"from": "+96599000222"}, text="hi")
        return answer.status_code == 202

    await eventually(victim_taken, within=30, interval=0.5)


async def test_a_slow_body_is_answered_408_after_its_deadline(guarded: RunningHub, public: Server) -> None:
    org = await register(guarded)
    channel = await channel_posting_to(guarded, org.admin.token, f"{public.url}/hook")
    host, port = guarded.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"POST /api/channels/{channel.id}/inbound HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{".encode()
    )
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), timeout=40)
    writer.close()
    assert status_line.split()[1] == b"408"


async def test_an_address_that_keeps_guessing_channels_is_turned_away(tmp_path: Path) -> None:
    hub = await start_hub(make_settings(tmp_path, HUB_INBOUND_FAILURES_PER_ADDRESS="5"), kind="sqlite")
    try:
        async with httpx.AsyncClient(base_url=hub.url) as client:
            statuses = []
            for _ in range(8):
                body = b'{"external_id": "x", "from": "+96599000333", "text": "hi"}'
                posted = await client.post(
                    f"/api/channels/{uuid.uuid4()}/inbound",
                    content=body,
                    headers={"X-Hub-Signature": signature("guess", body, 0)},
                )
                statuses.append(posted.status_code)
        assert statuses == [404] * 5 + [429] * 3
    finally:
        await hub.stop()
