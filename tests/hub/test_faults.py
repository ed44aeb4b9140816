"""Outages of the services the hub needs, injected while it works: what callers are answered,
that nothing acknowledged is lost or doubled, and that the hub recovers by itself."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import func, select

from inbox.models import Message
from tests.conftest import (
    PASSWORD,
    RunningHub,
    add_member,
    as_hub_login,
    capture_pushes,
    eventually,
    make_settings,
    register,
    start_hub,
)
from tests.faults import CuttableProxy, PrivateRedis
from tests.helpers.channels import channel_posting_to
from tests.helpers.pushes import EVERYONE

ROOT = Path(__file__).resolve().parents[2]


def through(url: str, proxy: CuttableProxy) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))


@pytest.fixture
async def hub_behind_a_cuttable_database(
    tmp_path: Path, fresh_database: str, redis_url: str
) -> AsyncIterator[tuple[RunningHub, CuttableProxy]]:
    target = urlsplit(fresh_database)
    proxy = await CuttableProxy(target.hostname or "127.0.0.1", target.port or 5432).start()
    settings = make_settings(
        tmp_path,
        DATABASE_URL=through(as_hub_login(fresh_database), proxy),
        HUB_DATABASE_OWNER_URL=fresh_database,
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
    channel = await channel_posting_to(hub, organization.admin.token, public_receiver_url)
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
    tmp_path: Path, fresh_database: str
) -> AsyncIterator[tuple[RunningHub, PrivateRedis]]:
    redis = await PrivateRedis().start()
    settings = make_settings(
        tmp_path, DATABASE_URL=fresh_database, REDIS_URL=redis.url, HUB_MIGRATE_ON_START="true"
    )
    hub = await start_hub(settings, kind="postgres")
    try:
        yield hub, redis
    finally:
        await hub.stop()
        await redis.kill()


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
    channel = await channel_posting_to(hub, organization.admin.token, public_receiver_url)
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


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.slow
async def test_a_worker_waits_out_redis_and_takes_up_an_emptied_stream_by_itself(
    tmp_path: Path, fresh_database: str
) -> None:
    """A real `hub worker`: while Redis is away it waits (no busy loop); when Redis comes back
    empty it makes its consumer group again and runs what is sent from then on, unrestarted."""
    from aiohttp import web

    from tests.conftest import child_environment, one_route_app, serve_web_app

    received: list[str] = []

    async def hook(request: web.Request) -> web.Response:
        payload = await request.json()
        if payload.get("type") == "message":
            received.append(payload["text"])
        return web.json_response({})

    runner, address = await serve_web_app(one_route_app("/hook", hook))
    redis = await PrivateRedis().start()
    settings = make_settings(
        tmp_path, DATABASE_URL=fresh_database, REDIS_URL=redis.url, HUB_MIGRATE_ON_START="true"
    )
    web_hub = await start_hub(settings, kind="postgres")  # HTTP only: the worker runs the tasks
    worker = subprocess.Popen(  # noqa: ASYNC220 - runs for the whole test
        [sys.executable, "-m", "hub.cli", "worker"],
        cwd=ROOT,
        env=child_environment(web_hub.settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        organization = await register(web_hub)
        channel = await channel_posting_to(web_hub, organization.admin.token, f"{address}/hook")
        stored = (await channel.send(external_id="w-1", **{"from": "+966501230300"}, text="hi")).json()
        url = f"/api/inbox/conversations/{stored['conversation_id']}/messages"
        async with web_hub.client(organization.admin.token) as client:
            assert (await client.post(url, json={"text": "first"})).status_code == 201
        await eventually(lambda: "first" in received, within=30)

        await redis.kill()
        before = cpu_seconds(worker.pid)
        await asyncio.sleep(5)
        assert cpu_seconds(worker.pid) - before < 1.0  # waiting, not spinning
        await redis.start()  # empty: no stream, no consumer group
        async with web_hub.client(organization.admin.token) as client:
            for attempt in range(40):  # the web process reconnects on its own too
                answer = await client.post(url, json={"text": f"after-{attempt}"})
                assert answer.status_code == 201
                if await eventually_or_none(lambda n=attempt: f"after-{n}" in received, within=1.5):
                    break
            else:
                raise AssertionError(f"no reply went out after Redis came back: {received}")
        assert worker.poll() is None
    finally:
        worker.terminate()
        await asyncio.to_thread(worker.wait, 30)
        await web_hub.stop()
        await redis.kill()
        await runner.cleanup()


async def eventually_or_none(check: Any, *, within: float) -> Any:
    try:
        return await eventually(check, within=within)
    except AssertionError:
        return None


async def test_sockets_are_told_when_their_process_lost_the_shared_channel(
    tmp_path: Path, fresh_database: str
) -> None:
    """Two web processes share rooms through Redis. Redis goes away and comes back: the sockets
    stayed connected, missed what was sent meanwhile, and are told so (`resyncNeeded`), with the
    moment to read again from; one listing (`changed_since`) then gives what changed."""
    redis = await PrivateRedis().start()
    settings = make_settings(
        tmp_path, DATABASE_URL=fresh_database, REDIS_URL=redis.url, HUB_MIGRATE_ON_START="true"
    )
    first, second = await start_hub(settings, kind="postgres"), await start_hub(settings, kind="postgres")
    try:
        organization = await register(first)
        organization.members["admin"] = organization.admin
        for role in ("manager", "agent", "member"):
            await add_member(first, organization, role)
        pushes = await capture_pushes(second, organization)  # every socket on the second process
        channel = await channel_posting_to(first, organization.admin.token, "http://127.0.0.1:9/hook")
        quiet = (await channel.send(external_id="q-1", **{"from": "+966501230400"}, text="hi")).json()
        await pushes.expect("newMessage", to={"admin", "manager", "member"})

        await redis.kill()
        during = (await channel.send(external_id="d-1", **{"from": "+966501230401"}, text="hi")).json()
        await asyncio.sleep(1)
        await redis.start()
        # Every socket of the process that lost the channel, whoever it belongs to: none knows
        # what it missed.
        told = await pushes.expect("resyncNeeded", to=EVERYONE, within=30)
        assert all(events.client.connected for events in pushes.sockets.values())
        assert told["reason"] == "missed_events"
        async with second.client(organization.admin.token) as client:
            changed = (
                await client.get("/api/inbox/conversations", params={"changed_since": told["since"]})
            ).json()["items"]
        ids = [c["id"] for c in changed]
        assert during["conversation_id"] in ids
        assert quiet["conversation_id"] not in ids  # heard before the outage: nothing to read again
        await pushes.close()
    finally:
        await second.stop()
        await first.stop()
        await redis.kill()


class HangingFirstMailbox:
    """An SMTP server's inbox whose first message never finishes: its sender is stuck in it."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.hanging = 0

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        if self.hanging == 0:
            self.hanging += 1
            await asyncio.sleep(120)
        self.messages.append(envelope.original_content)
        return "250 OK"


def hub_child(command: str, environment: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "hub.cli", command],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.slow
async def test_a_killed_workers_task_is_taken_by_another_within_the_reclaim_time(
    tmp_path: Path, fresh_database: str, redis_url: str
) -> None:
    """A real `hub worker` is killed in the middle of a task (an e-mail stuck in its sending);
    another worker takes the task within HUB_TASK_RECLAIM_SECONDS, long before the outbox's own
    retry (no scheduler runs here, and its claim is 10 minutes) or taskiq's 10-minute default."""
    from aiosmtpd.controller import Controller

    from tests.conftest import child_environment, free_port

    mailbox = HangingFirstMailbox()
    port = free_port()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=port)
    smtp.start()
    settings = make_settings(
        tmp_path, DATABASE_URL=fresh_database, REDIS_URL=redis_url, HUB_MIGRATE_ON_START="true"
    )
    web_hub = await start_hub(settings, kind="postgres")  # HTTP only: the workers run the tasks
    environment = child_environment(
        web_hub.settings,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(port),
        SMTP_STARTTLS="false",
        HUB_TASK_RECLAIM_SECONDS="3",
        HUB_EVENT_CLAIM_SECONDS="600",
    )
    first = hub_child("worker", environment)
    second: subprocess.Popen[bytes] | None = None
    try:
        organization = await register(web_hub)
        async with web_hub.client() as client:
            asked = await client.post("/api/auth/forgot-password", json={"email": organization.admin.email})
            assert asked.status_code == 202
        await eventually(lambda: mailbox.hanging == 1, within=30)  # the first worker is stuck in it
        second = hub_child("worker", environment)
        first.kill()  # SIGKILL: no clean-up of any kind
        await asyncio.to_thread(first.wait, 10)
        await eventually(lambda: len(mailbox.messages) == 1, within=40, interval=0.2)
        await asyncio.sleep(4)  # past another reclaim: it is not sent twice
        assert len(mailbox.messages) == 1
        assert f"To: {organization.admin.email}".encode() in mailbox.messages[0]
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                await asyncio.to_thread(process.wait, 30)
        await web_hub.stop()
        smtp.stop()


@pytest.mark.slow
async def test_a_timed_job_due_while_redis_is_away_fires_when_it_returns(
    tmp_path: Path, fresh_database: str
) -> None:
    """Real `hub scheduler` and `hub worker`, started while Redis is away, come up when it
    returns; then a snoozed conversation falls due while Redis is away again, Redis comes back
    empty and the conversation wakes, with neither process restarted."""
    from datetime import UTC, datetime, timedelta

    from tests.conftest import child_environment

    redis = await PrivateRedis().start()
    settings = make_settings(
        tmp_path, DATABASE_URL=fresh_database, REDIS_URL=redis.url, HUB_MIGRATE_ON_START="true"
    )
    web_hub = await start_hub(settings, kind="postgres")
    environment = child_environment(web_hub.settings, HUB_TIMED_JOB_CLAIM_SECONDS="3")
    await redis.kill()
    scheduler, worker = hub_child("scheduler", environment), hub_child("worker", environment)
    try:
        await asyncio.sleep(4)  # they start meanwhile, and wait
        assert scheduler.poll() is None
        assert worker.poll() is None
        await redis.start()
        organization = await register(web_hub)
        channel = await channel_posting_to(web_hub, organization.admin.token, "http://127.0.0.1:9/hook")

        async def snooze(sender: str, seconds: float) -> str:
            stored = (await channel.send(external_id=sender, **{"from": sender}, text="hi")).json()
            url = f"/api/inbox/conversations/{stored['conversation_id']}"
            wake_at = (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()
            async with web_hub.client(organization.admin.token) as client:
                answer = await client.patch(url, json={"status": "snoozed", "snoozed_until": wake_at})
            assert answer.status_code == 200, answer.text
            return url

        async def woken(url: str) -> bool:
            async with web_hub.client(organization.admin.token) as client:
                return bool((await client.get(url)).json()["status"] == "open")

        # Both processes are up and at work: a first snooze wakes.
        # A few seconds ahead: the snooze must still be in the future when a busy hub reads it.
        first = await snooze("+966501230500", 3)
        await eventually(lambda: woken(first), within=45, interval=0.5)

        # Redis goes away first, so the snooze surely falls due while it is away (on a busy
        # machine a snooze made just before could be handed off before Redis was gone).
        await redis.kill()
        url = await snooze("+966501230501", 3)
        await asyncio.sleep(8)  # due, and handed off in vain, meanwhile
        assert not await woken(url)
        await redis.start()  # empty
        await eventually(lambda: woken(url), within=45, interval=0.5)
        assert scheduler.poll() is None
        assert worker.poll() is None
    finally:
        for process in (scheduler, worker):
            process.terminate()
        for process in (scheduler, worker):
            await asyncio.to_thread(process.wait, 30)
        await web_hub.stop()
        await redis.kill()


@pytest.mark.slow
async def test_two_web_processes_ride_out_a_redis_restart_under_load(
    tmp_path: Path, fresh_database: str
) -> None:
    """Two web processes take signed posts at about 20 a second, half each, while Redis is killed
    and comes back empty: no post is answered 5xx, every acknowledged one is stored once, the
    sockets on both stay connected, and once Redis is back each process's posts reach the other's
    sockets again, with no process restarted."""
    from urllib.parse import urlsplit

    from tests.helpers.channels import ApiChannel

    redis = await PrivateRedis().start()
    settings = make_settings(
        tmp_path, DATABASE_URL=fresh_database, REDIS_URL=redis.url, HUB_MIGRATE_ON_START="true"
    )
    first, second = await start_hub(settings, kind="postgres"), await start_hub(settings, kind="postgres")
    try:
        organization = await register(first)
        heard: dict[str, list[str]] = {"first": [], "second": []}
        screens = {
            "first": await first.socket(organization.admin.token),
            "second": await second.socket(organization.admin.token),
        }
        for name, screen in screens.items():
            screen.on(
                "newMessage", lambda data, name=name: heard[name].append(data["message"]["external_id"])
            )
        made = await channel_posting_to(first, organization.admin.token, "http://127.0.0.1:9/hook")
        path = urlsplit(made.inbound_url).path
        channels = [
            made,
            ApiChannel(made.id, f"{second.url}{path}", made.receipts_url, made.secret),
        ]
        answers: dict[str, int] = {}
        phases: dict[str, list[str]] = {"before": [], "down": [], "after": []}
        phase = "before"
        stop = asyncio.Event()

        async def post_steadily() -> None:
            n = 0
            while not stop.is_set():
                external = f"load-{n}"
                answer = await channels[n % 2].send(
                    external_id=external, **{"from": f"+9665012306{n % 20:02d}"}, text=f"message {n}"
                )
                answers[external] = answer.status_code
                phases[phase].append(external)  # the phase it was answered in
                n += 1
                await asyncio.sleep(0.05)

        load = asyncio.create_task(post_steadily())
        # Counted by posts, not by seconds: a busy machine posts more slowly, never fewer.
        await eventually(lambda: len(phases["before"]) >= 20, within=60)
        before = list(phases["before"])
        # What was answered so far reaches both processes' sockets while Redis is there.
        await eventually(lambda: all(set(before) <= set(heard[name]) for name in heard), within=30)
        await redis.kill()
        phase = "down"
        await eventually(lambda: len(phases["down"]) >= 40, within=120)
        await redis.start()  # empty
        phase = "after"
        await eventually(lambda: len(phases["after"]) >= 40, within=120)
        stop.set()
        await load
        assert all(status == 202 for status in answers.values()), sorted(set(answers.values()))
        async with first.runtime.db.session(organization.id) as session:
            stored = (
                await session.execute(
                    select(Message.external_id, func.count())
                    .where(Message.direction == "inbound")
                    .group_by(Message.external_id)
                )
            ).all()
        assert dict(stored) == dict.fromkeys(answers, 1)  # every acknowledged post, once

        # Both processes hear each other again, unrestarted, their sockets never dropped.
        async def heard_across(channel: ApiChannel, listener: str) -> None:
            for attempt in range(15):
                external = f"{listener}-after-{attempt}"
                answer = await channel.send(external_id=external, **{"from": "+966501230699"}, text="back")
                assert answer.status_code == 202
                if await eventually_or_none(lambda external=external: external in heard[listener], within=2):
                    return
            raise AssertionError(f"the {listener} process's socket never heard the other again")

        await heard_across(channels[0], "second")
        await heard_across(channels[1], "first")
        assert all(screen.connected for screen in screens.values())
        for screen in screens.values():
            await screen.disconnect()
    finally:
        await second.stop()
        await first.stop()
        await redis.kill()
