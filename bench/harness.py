"""What the benchmarks share: serving an ASGI app on a free port of this machine, on the event
loop that `hub serve` runs (uvloop, which uvicorn picks when it is installed)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import tempfile
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg
import uvicorn
import uvloop

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on uvloop: what the hub's server runs on, so the figures are the ones it gets."""
    return uvloop.run(main)


def bench_hub(**extra: str) -> dict[str, str]:
    """An embedded benchmark hub's settings: a fresh data directory, key and queue, the limits that
    would throttle the load lifted, quiet logs; `local_hub()` and `extra` on top."""
    return {
        "HUB_DATA_DIR": tempfile.mkdtemp(prefix="hub-bench-"),
        "HUB_SECRET_KEY": secrets.token_urlsafe(40),
        **local_hub(),
        "HUB_API_RATE_LIMIT": str(10**9),
        "HUB_LOG_LEVEL": "WARNING",
        "HUB_LOG_JSON": "true",
        "HUB_TASK_QUEUE": f"hubbench{secrets.token_hex(3)}",
        **extra,
    }


def local_hub() -> dict[str, str]:
    """Settings every benchmark hub shares: its public address (a free port of this machine, which
    `serve` then listens on), loopback receivers allowed as webhook targets, and the server's own
    superuser as its database login (allowed on purpose; the per-transaction role switch that row
    security costs is the same for any login)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return {
        "HUB_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "HUB_OUTBOUND_ALLOW": "127.0.0.0/8",
        "HUB_ALLOW_SUPERUSER": "1",
    }


async def serve(app: Any) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    """Start uvicorn in this loop; the server, its task and its address (a hub's public one)."""
    runtime = getattr(app, "runtime", None)
    port = urlsplit(runtime.settings.public_url).port if runtime is not None else 0
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for this
        await asyncio.sleep(0.02)
    return server, task, f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"


@contextlib.asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """An empty PostgreSQL database for one run (on the server of TEST_DATABASE_URL), dropped
    afterwards: each run starts from nothing, so runs compare."""
    admin_dsn = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    admin_dsn = admin_dsn.replace("postgresql+asyncpg://", "postgresql://")
    name = f"hub_bench_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield admin_dsn.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def register(client: Any, name: str = "Bench") -> dict[str, Any]:
    """A new organization and its admin, through the API; the answer (tokens, ids)."""
    answer = await client.post(
        "/api/auth/register",
        json={
            "organization_name": name,
            "full_name": "Admin",
            "email": f"a-{secrets.token_hex(4)}@x.test",
            "password": "a long bench passphrase",
        },
    )
    return dict(answer.json())


async def organization_with_channel(client: Any) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    """A new organization (the register answer), its admin's headers, and an API channel of it
    whose replies go nowhere (`inbound_url`, `secret`)."""
    registered = await register(client)
    admin = {"Authorization": f"Bearer {registered['access_token']}"}
    channel = (
        await client.post(
            "/api/channels",
            headers=admin,
            json={"type": "api", "name": "Bench", "webhook_url": "http://127.0.0.1:9/hook"},
        )
    ).json()
    return registered, admin, dict(channel)


async def people(runtime: Any, organization_id: Any, roles: list[tuple[str, int]]) -> list[str]:
    """Many people of these roles, written straight to the database (inviting them one by one
    measures nothing here); their access tokens, in the same order."""
    from hub.models import User
    from hub.security import issue_access_token

    async with runtime.db.session(organization_id) as session:
        users = [
            User(
                email=f"{role}-{n}-{secrets.token_hex(3)}@x.test",
                full_name=f"{role} {n}",
                password_hash="-",
                role=role,
            )
            for role, many in roles
            for n in range(many)
        ]
        session.add_all(users)
        await session.commit()
    return [
        issue_access_token(
            runtime.settings,
            user_id=user.id,
            organization_id=organization_id,
            session_version=user.session_version,
        ).token
        for user in users
    ]


class LeanSocket:
    """A Socket.IO client reduced to what a benchmark's reader needs, over one websocket: it
    answers the server's heartbeats and hands each `event` to `on_event` as the raw text of its
    packet, without decoding it. Reading thousands of deliveries a second through the full
    python-socketio client costs its process more CPU than the server spends sending them, so on
    a small machine the load, not the server, would set the figures."""

    def __init__(self, url: str, auth: dict[str, Any], event: str, on_event: Any) -> None:
        parts = urlsplit(url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        self.address = f"{scheme}://{parts.netloc}/socket.io/?EIO=4&transport=websocket"
        self.auth = auth
        self.prefix = f'42["{event}",'
        self.on_event = on_event
        self.dropped = False  # the server closed it (a busy server must keep every socket)
        self._connection: Any = None
        self._reading: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        import json

        import websockets

        connection = self._connection = await websockets.connect(
            self.address, max_size=None, compression=None, ping_interval=None
        )
        opened = await connection.recv()
        if not opened.startswith("0"):
            raise RuntimeError(f"not an Engine.IO handshake: {opened[:80]}")
        await connection.send("40" + json.dumps(self.auth))
        answer = await connection.recv()
        if not answer.startswith("40"):
            raise RuntimeError(f"socket refused: {answer[:200]}")
        self._reading = asyncio.create_task(self._read())

    async def _read(self) -> None:
        connection, prefix, on_event = self._connection, self.prefix, self.on_event
        try:
            async for frame in connection:
                if frame == "2":  # the server's heartbeat
                    await connection.send("3")
                elif frame.startswith(prefix):
                    on_event(frame)
        except Exception:
            pass
        self.dropped = not self._closing

    _closing = False

    async def close(self) -> None:
        self._closing = True
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.send("41")
                await self._connection.close()
        if self._reading is not None:
            with contextlib.suppress(BaseException):
                await self._reading


class LeanPoster:
    """HTTP/1.1 posts to one server over at most `connections` kept-alive connections, reduced to
    what a load generator needs (the status of each answer). httpx's connection pool costs its
    process about a millisecond of CPU per request with many in flight, which on a small machine
    made the load, not the server, the bottleneck."""

    def __init__(self, url: str, connections: int = 100) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.authority = parts.netloc
        self.limit = connections
        self.opened = 0
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.freed = asyncio.Condition()

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with self.freed:
            while not self.idle and self.opened >= self.limit:
                await self.freed.wait()
            if self.idle:
                return self.idle.pop()
            self.opened += 1
        try:
            return await asyncio.open_connection(self.host, self.port)
        except OSError:
            await self._gone()
            raise

    async def _gone(self) -> None:
        async with self.freed:
            self.opened -= 1
            self.freed.notify()

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST `body` to `url` (on this server); the answer's status, or 0 when the connection failed.
        A kept connection the server closed meanwhile (its keep-alive ran out) is dropped, and the
        post sent again on the next (at last a new one), as HTTP clients do: the server never read it."""
        path = urlsplit(url).path
        head = f"POST {path} HTTP/1.1\r\nHost: {self.authority}\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        request = head.encode() + b"\r\n" + body
        for _attempt in range(self.limit + 1):  # every kept connection may have run out meanwhile
            status = await self._send(request)
            if status != -1:
                return status
        return 0

    async def _send(self, request: bytes) -> int:
        """One attempt: the status, 0 when the answer broke off, -1 when the server had closed the
        connection before answering."""
        try:
            reader, writer = await self._connection()
        except OSError:
            return 0
        try:
            writer.write(request)
            line = await reader.readline()
        except OSError:
            line = b""
        if not line:  # closed (or reset) by the server before it answered
            writer.close()
            await self._gone()
            return -1
        try:
            status = int(line.split()[1])
            length, chunked, close = 0, False, False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                name, value = name.strip().lower(), value.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding":
                    chunked = value == b"chunked"
                elif name == b"connection":
                    close = value == b"close"
            if chunked:
                while size := int((await reader.readline()).strip(), 16):
                    await reader.readexactly(size + 2)
                await reader.readline()
            elif length:
                await reader.readexactly(length)
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
            writer.close()
            await self._gone()
            return 0
        if close:
            writer.close()
            await self._gone()
        else:
            async with self.freed:
                self.idle.append((reader, writer))
                self.freed.notify()
        return status

    async def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()
