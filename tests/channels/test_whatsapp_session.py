"""A WhatsApp profile's session against the failure neonize really raises offline: WhatsApp's
servers cannot be reached from here, so every connect fails to dial."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from channels.whatsapp.session import reconnect_delay
from tests.conftest import add_member, make_settings, register, start_hub
from tests.helpers.sockets import connect


def test_backoff_grows_to_its_ceiling_with_jitter() -> None:
    delays = [reconnect_delay(attempt, base=2, ceiling=300) for attempt in range(1, 12)]
    assert 1.6 <= delays[0] <= 2.4
    assert 3.2 <= delays[1] <= 4.8
    assert all(240 <= d <= 360 for d in delays[8:])  # capped, give or take the jitter
    assert (
        len({round(reconnect_delay(5, base=2, ceiling=300), 6) for _ in range(20)}) > 1
    )  # never in lockstep


async def test_offline_connect_backs_off_reports_the_state_and_stops_cleanly(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, HUB_WHATSAPP_RECONNECT_BASE_SECONDS="0.2", HUB_WHATSAPP_RECONNECT_MAX_SECONDS="0.8"
    )
    hub = await start_hub(settings, kind="sqlite")
    try:
        organization = await register(hub)
        manager = await add_member(hub, organization, "manager")
        agent = await add_member(hub, organization, "agent")
        manager_screen, agent_screen = await connect(hub, manager.token), await connect(hub, agent.token)
        async with hub.client(organization.admin.token, language="en") as client:
            created = await client.post("/api/whatsapp/profiles", json={"name": "Sales line"})
            assert created.status_code == 201
            profile = created.json()
            assert (profile["state"], profile["paired"], profile["qr"]) == ("disconnected", False, None)
            started = time.monotonic()
            answer = await client.post(
                "/api/whatsapp/connect", json={"profile_id": profile["id"], "wait_seconds": 5}
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["qr"] is None  # nothing to scan: the servers are unreachable
            await asyncio.sleep(3)
            listed = (await client.get("/api/whatsapp/profiles")).json()
        states = [
            e["state"] for e in manager_screen.named("channelStateChanged") if e["profileId"] == profile["id"]
        ]
        attempts = states.count("connecting")
        # Retried with growing delays (0.2 s, 0.4 s, then 0.8 s), not in a tight loop.
        assert 3 <= attempts <= 10, states
        assert states[:2] == ["connecting", "disconnected"]
        assert listed[0]["state"] in ("connecting", "disconnected")
        # Every drop carries neonize's own reason for it.
        reasons = [
            e["detail"]
            for e in manager_screen.named("channelStateChanged")
            if e["profileId"] == profile["id"] and e["state"] == "disconnected"
        ]
        assert reasons
        assert all("failed to dial" in reason for reason in reasons), reasons
        assert agent_screen.named("channelStateChanged") == []  # profiles are the managers' business
        async with hub.client() as client:
            assert (await client.get("/health")).status_code == 200  # the hub itself carries on
        assert time.monotonic() - started < 30
        for screen in (manager_screen, agent_screen):
            await screen.client.disconnect()
    finally:
        stopping = time.monotonic()
        await hub.stop()
        assert time.monotonic() - stopping < 15  # the session is stopped with the hub


async def test_profiles_are_per_organization_and_admin_made(tmp_path: Path) -> None:
    hub = await start_hub(make_settings(tmp_path), kind="sqlite")
    try:
        ours, theirs = await register(hub), await register(hub)
        agent = await add_member(hub, ours, "agent")
        async with hub.client(ours.admin.token) as client:
            profile = (await client.post("/api/whatsapp/profiles", json={"name": "Support"})).json()
            bad = await client.post("/api/whatsapp/profiles", json={"name": ""})
            assert bad.status_code == 400
        async with hub.client(agent.token) as client:
            assert (await client.post("/api/whatsapp/profiles", json={"name": "x"})).status_code == 403
            assert (
                await client.post("/api/whatsapp/connect", json={"profile_id": profile["id"]})
            ).status_code == 403
            assert [p["id"] for p in (await client.get("/api/whatsapp/profiles")).json()] == [profile["id"]]
        async with hub.client(theirs.admin.token) as client:
            assert (await client.get(f"/api/whatsapp/profiles/{profile['id']}")).status_code == 404
            assert (
                await client.post("/api/whatsapp/connect", json={"profile_id": profile["id"]})
            ).status_code == 404
            assert (await client.get("/api/whatsapp/profiles")).json() == []
    finally:
        await hub.stop()


async def test_a_profile_is_held_by_one_process_and_the_others_route_to_it(
    tmp_path: Path, fresh_database: str, redis_url: str
) -> None:
    """Two web processes of one installation (same database, same Redis): the first to connect a
    profile holds its lease; an operation asked of the other is carried out by the holder."""
    import uuid

    import pytest

    from channels.adapters import ChannelError, OutboundMessage, adapter_for
    from channels.models import Channel
    from channels.whatsapp.sessions import sessions_of
    from hub.runtime import bind, unbind

    settings = make_settings(
        tmp_path,
        DATABASE_URL=fresh_database,
        REDIS_URL=redis_url,
        HUB_MIGRATE_ON_START="true",
        HUB_WHATSAPP_RECONNECT_BASE_SECONDS="5",
    )
    holder_web = await start_hub(settings, kind="postgres")
    other_web = await start_hub(settings, kind="postgres")
    try:
        organization = await register(holder_web)
        async with holder_web.client(organization.admin.token) as client:
            profile = (await client.post("/api/whatsapp/profiles", json={"name": "Routed line"})).json()
            assert (
                await client.post(
                    "/api/whatsapp/connect", json={"profile_id": profile["id"], "wait_seconds": 1}
                )
            ).status_code == 200
        async with other_web.client(organization.admin.token) as client:
            refused = await client.post(
                "/api/whatsapp/connect", json={"profile_id": profile["id"], "wait_seconds": 0}
            )
            assert refused.status_code == 409  # held elsewhere: never two clients for one account
        held_here = sessions_of(holder_web.runtime)
        assert held_here.get(uuid.UUID(profile["id"])) is not None
        assert await held_here.holder_of(uuid.UUID(profile["id"])) == held_here.holder
        assert sessions_of(other_web.runtime).get(uuid.UUID(profile["id"])) is None

        async with other_web.runtime.db.session(organization.id) as session:
            channel = await session.get_one(Channel, uuid.UUID(profile["id"]))
        token = bind(other_web.runtime)
        try:
            with pytest.raises(ChannelError) as refused_send:
                await adapter_for("whatsapp").send(
                    channel,
                    OutboundMessage(
                        message_id=uuid.uuid4(),
                        conversation_id=uuid.uuid4(),
                        recipient="+966501234567",
                        text="hello",
                    ),
                )
        finally:
            unbind(token)
        # The holder answered: its session is not ready, since WhatsApp cannot be reached from here.
        assert refused_send.value.reason in (
            "profile Routed line is connecting",
            "profile Routed line is disconnected",
        )
        assert refused_send.value.retryable

        # Logging out through the other process is carried out by the holder, which lets go.
        async with other_web.client(organization.admin.token) as client:
            logged_out = await client.post(f"/api/whatsapp/profiles/{profile['id']}/logout")
        assert logged_out.status_code == 200, logged_out.text
        assert logged_out.json()["state"] == "logged_out"
        assert held_here.get(uuid.UUID(profile["id"])) is None
        assert await held_here.holder_of(uuid.UUID(profile["id"])) is None
    finally:
        await other_web.stop()
        await holder_web.stop()


async def test_logging_out_a_profile_that_runs_nowhere_forgets_its_keys(tmp_path: Path) -> None:
    import uuid

    from channels.whatsapp.keys import FileKeys

    hub = await start_hub(make_settings(tmp_path), kind="sqlite")
    try:
        organization = await register(hub)
        manager = await add_member(hub, organization, "manager")
        screen = await connect(hub, manager.token)
        async with hub.client(organization.admin.token) as client:
            profile = (await client.post("/api/whatsapp/profiles", json={"name": "Old line"})).json()
            # Keys left by an earlier run of the hub: the profile is paired but not running now.
            store = FileKeys(hub.runtime).path(uuid.UUID(profile["id"]))
            store.parent.mkdir(parents=True, exist_ok=True)
            store.write_bytes(b"keys of an earlier session")
            logged_out = await client.post(f"/api/whatsapp/profiles/{profile['id']}/logout")
            theirs = await register(hub)
        async with hub.client(theirs.admin.token) as client:
            assert (await client.post(f"/api/whatsapp/profiles/{profile['id']}/logout")).status_code == 404
        assert logged_out.status_code == 200, logged_out.text
        assert logged_out.json()["state"] == "logged_out"
        assert not store.exists()
        for _ in range(100):
            if screen.named("clientDisconnected"):
                break
            await asyncio.sleep(0.05)
        assert screen.named("clientDisconnected") == [{"profileId": profile["id"], "reason": "logged_out"}]
        await screen.client.disconnect()
    finally:
        await hub.stop()


async def test_a_lease_outlives_a_redis_outage_and_is_let_go_only_when_truly_lost(
    tmp_path: Path, fresh_database: str
) -> None:
    """Redis goes away and comes back empty: the holder renews again (retaking the lease nobody
    else took) and keeps its session. When another process holds the lease, the session stops.
    A routed call that comes after its start-by time is refused, never carried out."""
    import uuid

    import msgspec

    from channels.whatsapp.sessions import sessions_of
    from tests.conftest import eventually
    from tests.faults import PrivateRedis

    redis = await PrivateRedis().start()
    settings = make_settings(
        tmp_path,
        DATABASE_URL=fresh_database,
        REDIS_URL=redis.url,
        HUB_MIGRATE_ON_START="true",
        HUB_WHATSAPP_LEASE_SECONDS="3",
        HUB_WHATSAPP_RECONNECT_BASE_SECONDS="5",
    )
    hub = await start_hub(settings, kind="postgres")
    try:
        organization = await register(hub)
        async with hub.client(organization.admin.token) as client:
            profile = (await client.post("/api/whatsapp/profiles", json={"name": "Held line"})).json()
            answer = await client.post(
                "/api/whatsapp/connect", json={"profile_id": profile["id"], "wait_seconds": 0}
            )
            assert answer.status_code == 200, answer.text
        profile_id = uuid.UUID(profile["id"])
        sessions = sessions_of(hub.runtime)
        assert await sessions.holder_of(profile_id) == sessions.holder

        await redis.kill()
        await asyncio.sleep(1.5)  # renewals fail meanwhile; less than the lease: still ours
        assert sessions.get(profile_id) is not None
        await redis.start()  # empty: the lease is gone, and nobody else took it

        async def retaken() -> bool:
            return await sessions.holder_of(profile_id) == sessions.holder

        await eventually(retaken, within=10)
        assert sessions.get(profile_id) is not None

        # A call that waited past its start-by time is refused unstarted.
        reply = f"{settings.task_queue}:whatsapp:reply:late"
        assert hub.runtime.redis is not None
        seconds, _ = await hub.runtime.redis.time()
        late = {
            "reply": reply,
            "channel_id": profile["id"],
            "operation": "send",
            "payload": {},
            "start_by": int(seconds) - 1,
        }
        await hub.runtime.redis.rpush(sessions._calls_key(sessions.holder), msgspec.msgpack.encode(late))
        answered = await hub.runtime.redis.blpop([reply], timeout=10)
        assert answered is not None
        assert msgspec.msgpack.decode(answered[1]) == {
            "ok": False,
            "reason": "the call came too late to be carried out",
            "retryable": True,
            "in_doubt": False,
        }

        # Another process holds the number now: this one stops its client.
        await hub.runtime.redis.set(sessions._lease_key(profile_id), "another-process", px=60_000)
        await eventually(lambda: sessions.get(profile_id) is None, within=10)
    finally:
        await hub.stop()
        await redis.kill()
