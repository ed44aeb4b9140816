"""Socket.IO over a real socket: who may connect, and who receives a push."""

from __future__ import annotations

import asyncio
import time

import jwt
import pytest
import socketio

from tests.conftest import Organization, RunningHub, add_member, eventually, register
from tests.helpers.sockets import connect


async def test_valid_token_connects_over_websocket_and_polling(hub: RunningHub) -> None:
    organization = await register(hub)
    for transports in (["websocket"], ["polling"]):
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(
            hub.url, auth={"token": organization.admin.token}, transports=transports, wait_timeout=10
        )
        assert client.connected
        assert client.transport() == transports[0]
        # The Python client would wait for its pending long-poll to end; browsers abort it, and so do we.
        await client.eio.disconnect(abort=True)
        if client.eio.http is not None:
            await client.eio.http.close()


@pytest.mark.parametrize("kind", ["missing", "garbage", "wrong-signature", "expired"])
async def test_bad_tokens_are_refused(hub: RunningHub, kind: str) -> None:
    organization = await register(hub)
    claims = jwt.decode(organization.admin.token, options={"verify_signature": False})
    tokens = {
        "missing": None,
        "garbage": "garbage",
        "wrong-signature": jwt.encode(claims, "x" * 40, algorithm="HS256"),
        "expired": jwt.encode(
            {**claims, "iat": int(time.time()) - 7200, "exp": int(time.time()) - 60},
            hub.settings.secret_key,
            algorithm="HS256",
        ),
    }
    client = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            hub.url,
            auth={"token": tokens[kind]} if tokens[kind] else None,
            transports=["websocket"],
            wait_timeout=5,
        )
    assert not client.connected


async def test_revoked_token_is_refused_and_its_open_socket_closed(hub: RunningHub) -> None:
    organization = await register(hub)
    async with hub.client() as client:
        login = await client.post(
            "/api/auth/login",
            json={"email": organization.admin.email, "password": "A long enough passphrase 42"},
        )
    token = login.json()["access_token"]
    inbox = await connect(hub, token)
    other_login = await connect(hub, organization.admin.token)
    async with hub.client(token) as client:
        assert (await client.post("/api/auth/logout")).status_code == 204
    await eventually(lambda: not inbox.client.connected)
    assert inbox.named("sessionEnded") == [{"reason": "logged_out"}]
    assert other_login.client.connected  # only that login ends
    refused = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await refused.connect(hub.url, auth={"token": token}, transports=["websocket"], wait_timeout=5)
    await other_login.client.disconnect()


async def test_push_reaches_only_the_users_allowed(hub: RunningHub, organization: Organization) -> None:
    stranger_org = await register(hub)
    stranger = await connect(hub, stranger_org.admin.token)
    sockets = {role: await connect(hub, member.token) for role, member in organization.members.items()}
    second_tab = await connect(hub, organization.members["agent"].token)
    pusher = hub.runtime.pusher
    assert pusher is not None
    # Who hears what, below the declared events: undeclared probes through the pusher itself.

    await pusher.push(
        "probeForRoles", {"ticketId": "t1"}, organization_id=organization.id, roles=["admin", "manager"]
    )
    await pusher.push(
        "probeForUser",
        {"ticketId": "t1", "agentId": str(organization.members["agent"].user_id)},
        organization_id=organization.id,
        user_ids=[organization.members["agent"].user_id],
    )
    # The marker goes to everyone of the organization last; once it arrived, nothing else is on its way.
    await pusher.push(
        "marker", {}, organization_id=organization.id, roles=["admin", "manager", "agent", "member"]
    )
    for inbox in (*sockets.values(), second_tab):
        await eventually(lambda inbox=inbox: inbox.named("marker"))
    await asyncio.sleep(0.1)

    assert sockets["admin"].named("probeForRoles") == [{"ticketId": "t1"}]
    assert sockets["manager"].named("probeForRoles") == [{"ticketId": "t1"}]
    assert sockets["agent"].named("probeForRoles") == []
    assert sockets["member"].named("probeForRoles") == []
    assert len(sockets["agent"].named("probeForUser")) == 1
    assert len(second_tab.named("probeForUser")) == 1  # every tab of the user
    assert sockets["admin"].named("probeForUser") == []
    assert sockets["member"].named("probeForUser") == []
    assert stranger.received == []  # another organization hears nothing
    for inbox in (*sockets.values(), second_tab, stranger):
        await inbox.client.disconnect()


async def test_push_after_commit_is_sent_only_when_the_change_commits(hub: RunningHub) -> None:
    from hub.realtime import push_after_commit

    organization = await register(hub)
    inbox = await connect(hub, organization.admin.token)
    async with hub.runtime.db.session(organization.id) as session:
        push_after_commit(session, "rolledBack", {"n": 1}, roles=["admin"])
        await session.rollback()
    async with hub.runtime.db.session(organization.id) as session:
        push_after_commit(session, "committed", {"n": 2}, roles=["admin"])
        assert inbox.named("committed") == []  # nothing before the commit
        await session.commit()
    await eventually(lambda: inbox.named("committed"))
    assert inbox.named("rolledBack") == []
    await inbox.client.disconnect()


async def test_role_change_moves_the_user_out_of_the_old_role_room(hub: RunningHub) -> None:
    organization = await register(hub)
    manager = await add_member(hub, organization, "manager")
    inbox = await connect(hub, manager.token)
    async with hub.client(organization.admin.token) as client:
        assert (
            await client.patch(f"/api/users/{manager.user_id}/role", json={"role": "member"})
        ).status_code == 200
    await eventually(lambda: not inbox.client.connected)
    assert inbox.named("sessionEnded") == [{"reason": "role_changed"}]
    # Reconnecting puts the socket in the new role's room only.
    fresh = await connect(hub, manager.token)
    assert hub.runtime.pusher is not None
    await hub.runtime.pusher.push("managersOnly", {}, organization_id=organization.id, roles=["manager"])
    await hub.runtime.pusher.push("membersToo", {}, organization_id=organization.id, roles=["member"])
    await eventually(lambda: fresh.named("membersToo"))
    assert fresh.named("managersOnly") == []
    await fresh.client.disconnect()


@pytest.mark.parametrize("hub", ["postgres"], indirect=True)
async def test_scaled_web_processes_and_workers_share_rooms_through_redis(hub: RunningHub) -> None:
    from hub.realtime import Pusher
    from tests.conftest import start_hub

    organization = await register(hub)
    inbox = await connect(hub, organization.admin.token)
    # A second web process of the same installation (same database, same Redis channel).
    other_web = await start_hub(hub.settings, kind="postgres")
    try:
        assert other_web.runtime.pusher is not None
        await other_web.runtime.pusher.push(
            "fromOtherWeb", {"n": 1}, organization_id=organization.id, roles=["admin"]
        )
        # A worker has no socket server: it emits through a write-only Redis manager.
        worker_pusher = Pusher(hub.runtime, server=None)
        await worker_pusher.push(
            "fromWorker", {"n": 2}, organization_id=organization.id, user_ids=[organization.admin.user_id]
        )
        await eventually(lambda: inbox.named("fromOtherWeb") and inbox.named("fromWorker"))
        # Logout handled by the other web process still closes this process's socket.
        async with other_web.client(organization.admin.token) as client:
            assert (await client.post("/api/auth/logout")).status_code == 204
        await eventually(lambda: not inbox.client.connected)
    finally:
        await other_web.stop()


async def test_presence_follows_sockets_and_forgets_a_process_that_died(
    hub: RunningHub, organization: Organization
) -> None:
    from hub.realtime import PRESENCE_SECONDS, _presence_key

    pusher = hub.runtime.pusher
    assert pusher is not None
    agent = organization.members["agent"]
    screen = await connect(hub, agent.token)
    assert await pusher.online_in_role(organization.id, "agent") == {agent.user_id}
    assert await pusher.online_in_role(organization.id, "manager") == set()
    if hub.runtime.redis is not None:
        key = _presence_key(hub.settings, organization.id, "agent")
        other, dead = (
            await add_member(hub, organization, "agent"),
            await add_member(hub, organization, "agent"),
        )
        # Another web process vouches for its agent now; a process that died stopped a while ago.
        await hub.runtime.redis.zadd(
            key,
            {
                f"{other.user_id}:another": time.time(),
                f"{dead.user_id}:crashed": time.time() - PRESENCE_SECONDS - 5,
                f"{agent.user_id}:another": time.time(),
            },
        )
        assert await pusher.online_in_role(organization.id, "agent") == {agent.user_id, other.user_id}
        await screen.client.disconnect()
        # Gone from this process, but still connected through the other one.
        redis = hub.runtime.redis

        async def left_here() -> bool:
            return await redis.zscore(key, f"{agent.user_id}:{pusher.process_id}") is None

        await eventually(left_here)
        assert await pusher.online_in_role(organization.id, "agent") == {agent.user_id, other.user_id}
        await hub.runtime.redis.zrem(key, f"{agent.user_id}:another", f"{other.user_id}:another")
    else:
        await screen.client.disconnect()

    async def nobody_online() -> bool:
        return await pusher.online_in_role(organization.id, "agent") == set()

    await eventually(nobody_online)
