"""Scaled mode end to end behind a real load balancer: HAProxy with cookie-sticky sessions in front
of two `hub serve` processes, a `hub worker` and a `hub scheduler`, on PostgreSQL and Redis.
Sockets spread over both processes (long-polling and websocket), every inbound post reaches every
allowed socket whichever process holds it, a killed web process's sockets come back through the
balancer to the other and catch up, and the WhatsApp profile it held is taken up by the other."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import (
    IN_CI,
    METRICS_TOKEN,
    _asyncpg_dsn,
    add_member,
    child_environment,
    eventually,
    free_port,
    make_settings,
    register,
)
from tests.helpers.channels import make_channel, paired_by_a_scan, webhook_receiver
from tests.helpers.cluster import BalancedSocket, Cluster, environment_for, haproxy_available


@pytest.fixture
async def cluster(tmp_path: Path, fresh_database: str, redis_url: str) -> AsyncIterator[Cluster]:
    if not haproxy_available():
        message = "HAProxy is not installed (python3 dev.py test installs Debian's package where it can)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    port = free_port()
    settings = make_settings(
        tmp_path, DATABASE_URL=fresh_database, REDIS_URL=redis_url, HUB_PUBLIC_URL=f"http://127.0.0.1:{port}"
    )
    environment = environment_for(
        child_environment(settings),
        HUB_ALLOWED_HOSTS="127.0.0.1,localhost",
        HUB_METRICS_TOKEN=METRICS_TOKEN,
        HUB_WHATSAPP_LEASE_SECONDS="2",
        HUB_SOCKET_PING_INTERVAL="5",
    )
    running = Cluster(environment, port=port, web_ports=[free_port(), free_port()], workdir=tmp_path)
    try:
        await running.start()
        yield running
    finally:
        await running.stop()


async def sockets_by_process(cluster: Cluster) -> dict[str, float]:
    """Sockets per web process, as /metrics tells (any process answers for all of them)."""
    async with cluster.client() as client:
        answer = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert answer.status_code == 200, answer.text
    return {
        sample.labels["pid"]: sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
        if sample.name == "hub_sockets"
    }


@pytest.mark.slow
async def test_two_web_processes_behind_haproxy(
    cluster: Cluster, fresh_database: str, tmp_path: Path
) -> None:
    organization = await register(cluster)  # type: ignore[arg-type]  # the balancer quacks like a hub
    people = [organization.admin] + [
        await add_member(cluster, organization, "manager", as_the_role=False)  # type: ignore[arg-type]
        for _ in range(3)
    ]
    sockets = [
        BalancedSocket(cluster.url, person.token, transport)
        for person in people
        for transport in ("polling", "websocket")
    ]
    for socket in sockets:
        await socket.connect()
    try:
        # Spread over both processes, and each polling client kept to one by its cookie.
        assert {s.process for s in sockets if s.transport == "polling"} <= {"web0", "web1"}

        async def spread() -> bool:
            counts = await sockets_by_process(cluster)
            return len([c for c in counts.values() if c > 0]) == 2 and sum(counts.values()) == len(sockets)

        await eventually(spread, within=15)

        async with webhook_receiver() as receiver:
            channel = await make_channel(cluster, organization, receiver)  # type: ignore[arg-type]

            async def post(number: int) -> str:
                answer = await channel.send(
                    external_id=f"scale-{number}", **{"from": "+966561239000"}, text=f"message {number}"
                )
                assert answer.status_code == 202, answer.text
                return str(answer.json()["message_id"])

            # Every post, whichever process takes it, reaches every socket, whichever holds it.
            first = [await post(n) for n in range(6)]
            await eventually(lambda: all(set(first) <= s.messages.keys() for s in sockets), within=15)

            # A WhatsApp profile held by the first web process (a client sent there by its cookie).
            async with cluster.client(organization.admin.token) as client:
                client.cookies.set("HUBSRV", "web0")
                profile = (await client.post("/api/whatsapp/profiles", json={"name": "Shop line"})).json()
                connected = await client.post(
                    "/api/whatsapp/connect", json={"profile_id": profile["id"], "wait_seconds": 0}
                )
                assert connected.status_code == 200, connected.text
            lease = f"{cluster.environment['HUB_TASK_QUEUE']}:whatsapp:lease:{profile['id']}"
            redis = await redis_of(cluster)
            first_holder = await redis.get(lease)
            assert first_holder is not None
            owner = await asyncpg.connect(_asyncpg_dsn(fresh_database))
            try:  # the store's tables are there once neonize opened it in the first process

                async def store_made() -> bool:
                    return await owner.fetchval("SELECT to_regclass('whatsapp.whatsmeow_device')") is not None

                await eventually(store_made, within=20)
            finally:
                await owner.close()
            await paired_by_a_scan(fresh_database, uuid.UUID(profile["id"]))

            # The first web process dies. Its sockets come back through the balancer to the other.
            on_web0 = [s for s in sockets if s.process == "web0" or s.transport == "websocket"]
            cluster.kill("web0")
            during = [await post(n) for n in range(6, 9)]

            async def all_back() -> bool:
                return all(s.client is not None and s.client.connected for s in sockets) and (
                    await sockets_by_process(cluster)
                ).get(str(cluster.processes["web1"].pid)) == len(sockets)

            await eventually(all_back, within=20)
            assert any(s.disconnects for s in on_web0)
            # What a socket missed while it moved, it reads again (as the console does on reconnect).
            chat = await conversation_of(cluster, organization.admin.token)
            async with cluster.client(organization.admin.token) as client:
                listed = (await client.get(f"/api/inbox/conversations/{chat}/messages?limit=50")).json()
            assert set(first + during) <= {m["id"] for m in listed["items"]}

            # From now on every socket hears every post live, from the one process left.
            after = [await post(n) for n in range(9, 12)]
            await eventually(lambda: all(set(after) <= s.messages.keys() for s in sockets), within=15)

            # The profile the dead process held is taken up by the other once its lease lapses.
            async def taken_over() -> bool:
                holder = await redis.get(lease)
                return holder is not None and holder != first_holder

            await eventually(taken_over, within=15)
            await redis.aclose()
    finally:
        await asyncio.gather(*(socket.close() for socket in sockets))


async def redis_of(cluster: Cluster) -> object:
    from redis.asyncio import Redis

    return Redis.from_url(cluster.environment["REDIS_URL"])


async def conversation_of(cluster: Cluster, token: str) -> str:
    async with cluster.client(token) as client:
        listed = (await client.get("/api/inbox/conversations?limit=50")).json()
    assert listed["items"], listed
    return str(listed["items"][0]["id"])
