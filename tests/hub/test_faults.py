"""Outages of the services the hub needs, injected while it works: what callers are answered,
that nothing acknowledged is lost or doubled, and that the hub recovers by itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import func, select

from inbox.models import Message
from tests.conftest import (
    PASSWORD,
    RunningHub,
    add_member,
    as_hub_login,
    eventually,
    make_settings,
    register,
    start_hub,
)
from tests.faults import CuttableProxy, PrivateRedis
from tests.inbox.conftest import ApiChannel


def through(url: str, proxy: CuttableProxy) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))


@pytest.fixture
async def hub_behind_a_cuttable_database(
    tmp_path: Path, postgres_database: str, redis_url: str
) -> AsyncIterator[tuple[RunningHub, CuttableProxy]]:
    target = urlsplit(postgres_database)
    proxy = await CuttableProxy(target.hostname or "127.0.0.1", target.port or 5432).start()
    settings = make_settings(
        tmp_path,
        DATABASE_URL=through(as_hub_login(postgres_database), proxy),
        HUB_DATABASE_OWNER_URL=postgres_database,
        REDIS_URL=redis_url,
        HUB_MIGRATE_ON_START="true",
    )
    hub = await start_hub(settings, kind="postgres", in_process_worker=True)
    try:
        yield hub, proxy
    finally:
        await proxy.restore()
        await hub.stop()
        await proxy.close()


async def test_a_database_outage_is_503_with_retry_after_and_keeps_nothing(
    hub_behind_a_cuttable_database: tuple[RunningHub, CuttableProxy], public_receiver_url: str
) -> None:
    hub, proxy = hub_behind_a_cuttable_database
    organization = await register(hub)
    async with hub.client(organization.admin.token) as client:
        body = (
            await client.post(
                "/api/channels", json={"type": "api", "name": "Shop", "webhook_url": public_receiver_url}
            )
        ).json()
    channel = ApiChannel(
        id=body["id"],
        inbound_url=body["inbound_url"],
        receipts_url=body["receipts_url"],
        secret=body["secret"],
    )
    assert (
        await channel.send(external_id="before", **{"from": "+966501230001"}, text="hi")
    ).status_code == 202

    await proxy.cut()
    answers = [
        await channel.send(external_id=f"during-{n}", **{"from": "+966501230001"}, text="hi")
        for n in range(20)
    ]
    async with hub.client(organization.admin.token) as client:
        listed = await client.get("/api/inbox/conversations")
        health = await client.get("/health")
    assert {a.status_code for a in answers} == {503}
    assert all(a.headers.get("retry-after") for a in answers)
    assert answers[0].json()["status_code"] == 503
    assert listed.status_code == 503
    assert health.status_code == 503

    await proxy.restore()

    async def taken_again() -> bool:
        answer = await channel.send(external_id="after", **{"from": "+966501230001"}, text="hi")
        return answer.status_code == 202

    await eventually(taken_again, within=20, interval=0.2)
    # The refused posts kept nothing; the channel posts them again and each is stored once.
    for n in range(20):
        assert (
            await channel.send(external_id=f"during-{n}", **{"from": "+966501230001"}, text="hi")
        ).status_code == 202
    async with hub.runtime.db.session(organization.id) as session:
        stored = await session.scalar(
            select(func.count()).select_from(Message).where(Message.direction == "inbound")
        )
    assert stored == 22


@pytest.fixture
async def hub_on_a_private_redis(
    tmp_path: Path, postgres_database: str
) -> AsyncIterator[tuple[RunningHub, PrivateRedis]]:
    redis = await PrivateRedis().start()
    settings = make_settings(
        tmp_path, DATABASE_URL=postgres_database, REDIS_URL=redis.url, HUB_MIGRATE_ON_START="true"
    )
    hub = await start_hub(settings, kind="postgres")
    try:
        yield hub, redis
    finally:
        await hub.stop()
        await redis.kill()


async def new_channel(hub: RunningHub, token: str, webhook_url: str) -> ApiChannel:
    async with hub.client(token) as client:
        body = (
            await client.post(
                "/api/channels", json={"type": "api", "name": "Shop", "webhook_url": webhook_url}
            )
        ).json()
    return ApiChannel(
        id=body["id"],
        inbound_url=body["inbound_url"],
        receipts_url=body["receipts_url"],
        secret=body["secret"],
    )


async def test_without_redis_the_hub_degrades_and_answers_no_500(
    hub_on_a_private_redis: tuple[RunningHub, PrivateRedis], public_receiver_url: str
) -> None:
    hub, redis = hub_on_a_private_redis
    organization = await register(hub)
    agent = await add_member(hub, organization, "agent")
    async with hub.client(organization.admin.token) as client:
        changed = await client.patch("/api/inbox/settings", json={"auto_assign": True, "agent_cap": 50})
        assert changed.status_code == 200
    screen = await hub.socket(agent.token)
    channel = await new_channel(hub, organization.admin.token, public_receiver_url)
    first = await channel.send(external_id="before", **{"from": "+966501230100"}, text="hi")
    assert first.status_code == 202

    await redis.kill()
    statuses = []
    for n in range(10):  # new customers: each is assigned, with what this process knows of who is online
        answer = await channel.send(external_id=f"down-{n}", **{"from": f"+9665012302{n:02d}"}, text="hi")
        statuses.append(answer.status_code)
    async with hub.client(organization.admin.token) as client:
        listed = await client.get("/api/inbox/conversations")
        statuses += [listed.status_code, (await client.get("/api/users/me")).status_code]
        assigned = {c["assignee_id"] for c in listed.json()["items"]}
        health = (await client.get("/health")).json()
    async with hub.client() as client:
        signed_in = await client.post("/api/auth/login", json={"email": agent.email, "password": PASSWORD})
        statuses.append(signed_in.status_code)
    late = await hub.socket(signed_in.json()["access_token"])  # a socket still connects
    assert statuses == [202] * 10 + [200, 200, 200]
    assert assigned == {str(agent.user_id)}
    assert health["status"] == "degraded"
    assert health["redis"]["status"] == "down"

    await redis.start()  # back, and empty

    async def healthy() -> bool:
        async with hub.client() as client:
            return bool((await client.get("/health")).json()["status"] == "ok")

    await eventually(healthy, within=20, interval=0.2)
    again = await channel.send(external_id="after", **{"from": "+966501230100"}, text="hi")
    assert again.status_code == 202
    for socket in (screen, late):
        await socket.disconnect()


@pytest.fixture
async def public_receiver_url() -> AsyncIterator[str]:
    from aiohttp import web

    from tests.conftest import one_route_app, serve_web_app

    async def ok(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({})

    runner, address = await serve_web_app(one_route_app("/hook", ok))
    yield f"{address}/hook"
    await runner.cleanup()
