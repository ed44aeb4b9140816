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
