"""Socket.IO: who may connect, which rooms they join, and the one function that pushes events.

Rooms: `org:<id>` (everyone of an organization), `org:<id>:role:<role>`, `user:<id>` and
`token:<jti>` (the sockets of one login, closed by logout). The code that changes state calls
`push` with a declared `SocketEvent` and its `Audience` (`hub.audience`: who may read what);
`push_after_commit` underneath emits only after the commit; nothing else emits.
With Redis, web processes share rooms through AsyncRedisManager and workers emit through a
write-only manager on the same channel.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any, ClassVar, TypeVar

import msgspec
import socketio
import structlog
from redis.exceptions import RedisError

from hub.audience import Audience
from hub.auth import CurrentUser, authenticate_token
from hub.config import Settings
from hub.db import HubAsyncSession, utcnow
from hub.fanout import Emission, Fanout, LocalRooms
from hub.runtime import Runtime
from hub.security import InvalidToken

log = structlog.get_logger(__name__)
S = TypeVar("S", bound="SocketEvent")


def text_of(value: Any) -> str:
    """A Redis reply as text (this client answers bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def org_room(organization_id: uuid.UUID) -> str:
    return f"org:{organization_id}"


def role_room(organization_id: uuid.UUID, role: str) -> str:
    return f"org:{organization_id}:role:{role}"


def user_room(user_id: uuid.UUID) -> str:
    return f"user:{user_id}"


def token_room(jti: str) -> str:
    return f"token:{jti}"


def _channel(settings: Settings) -> str:
    return f"{settings.task_queue}:socketio"


def _sockets_key(settings: Settings, room: str) -> str:
    return f"{settings.task_queue}:sockets:{room}"


def _presence_key(settings: Settings, organization_id: uuid.UUID, role: str) -> str:
    return f"{settings.task_queue}:online:{role_room(organization_id, role)}"


# Presence with Redis: a sorted set per role of an organization whose members are "<user id>:<web
# process>", scored by when that process last vouched for them. Each process adds and removes only
# its own members, so processes never undo each other; a process that dies stops vouching, and its
# members fall out of the count after PRESENCE_SECONDS.
PRESENCE_REFRESH_SECONDS = 20
PRESENCE_SECONDS = 60


class Pusher:
    """Emits to rooms, through the local server or, in a worker, through Redis."""

    def __init__(self, runtime: Runtime, server: socketio.AsyncServer | None) -> None:
        self.runtime = runtime
        self.server = server
        self._writer: SharedWriter | None = None
        self._users: dict[str, CurrentUser] = {}  # the sockets of this process: sid -> user
        self.process_id = secrets.token_hex(6)
        self.fanout = Fanout(self._emit_many, runtime.settings.socket_fanout_queue)
        if server is None and runtime.settings.redis_url:
            self._writer = SharedWriter(
                runtime.settings.redis_url, channel=_channel(runtime.settings), write_only=True
            )

    async def emit(self, event: str, data: Any, rooms: list[str], *, wait: bool = False) -> None:
        """Queue an event for these rooms (see `hub.fanout`); with `wait`, until it went out."""
        if rooms:
            await self.fanout.put(event, msgspec.to_builtins(data), rooms, wait=wait)

    async def _emit_many(self, emissions: list[Emission]) -> None:
        manager = self.server.manager if self.server is not None else self._writer
        if isinstance(manager, SharedWriter):
            await manager.emit_many(emissions)
        elif self.server is not None:
            for event, payload, rooms in emissions:
                await self.server.emit(event, payload, to=rooms)
        else:
            log.debug("no socket server in this process; events not pushed", socket_events=len(emissions))

    async def push(
        self,
        event: str,
        data: Any,
        *,
        organization_id: uuid.UUID,
        user_ids: Iterable[uuid.UUID] = (),
        roles: Iterable[str] = (),
    ) -> None:
        """Push to exactly these users and roles of one organization; never wider."""
        rooms = [user_room(u) for u in dict.fromkeys(user_ids)]
        rooms += [role_room(organization_id, r) for r in dict.fromkeys(roles)]
        await self.emit(event, data, rooms)

    @property
    def connected(self) -> int:
        """Sockets connected to this process."""
        return len(self._users)

    async def arrived(self, sid: str, user: CurrentUser) -> None:
        """Note a connected socket, so the user counts as online in every web process."""
        self._users[sid] = user
        redis = self.runtime.redis
        if redis is None:
            return
        settings = self.runtime.settings
        lifetime = settings.access_token_minutes * 60 + 60
        try:
            async with redis.pipeline(transaction=False) as pipe:
                # Remembered so that another web process can close these sockets by room.
                for room in (token_room(user.token_id), user_room(user.id)):
                    pipe.sadd(_sockets_key(settings, room), sid)
                    pipe.expire(_sockets_key(settings, room), lifetime)
                self._vouch(pipe, [user])
                await pipe.execute()
        except RedisError:
            # The socket is open all the same; the presence refresh vouches for it once Redis returns.
            log.warning("presence not shared: Redis is unavailable", exc_info=True)

    async def left(self, sid: str) -> None:
        user = self._users.pop(sid, None)
        redis = self.runtime.redis
        if user is None or redis is None:
            return
        settings = self.runtime.settings
        try:
            async with redis.pipeline(transaction=False) as pipe:
                pipe.srem(_sockets_key(settings, token_room(user.token_id)), sid)
                pipe.srem(_sockets_key(settings, user_room(user.id)), sid)
                if not any(other.id == user.id for other in self._users.values()):
                    pipe.zrem(_presence_key(settings, user.organization_id, user.role), self._member(user))
                await pipe.execute()
        except RedisError:
            log.warning("presence not updated: Redis is unavailable (it lapses by itself)", exc_info=True)

    def _member(self, user: CurrentUser) -> str:
        return f"{user.id}:{self.process_id}"

    def _vouch(self, pipe: Any, users: Iterable[CurrentUser]) -> None:
        now = time.time()
        for user in users:
            key = _presence_key(self.runtime.settings, user.organization_id, user.role)
            pipe.zadd(key, {self._member(user): now})
            pipe.expire(key, PRESENCE_SECONDS * 2)

    async def keep_presence(self) -> None:
        """Vouch for this process's connected users until cancelled (web processes with Redis)."""
        redis = self.runtime.redis
        assert redis is not None
        while True:
            await asyncio.sleep(PRESENCE_REFRESH_SECONDS)
            try:
                users = {(user.id, user.role): user for user in self._users.values()}.values()
                async with redis.pipeline(transaction=False) as pipe:
                    self._vouch(pipe, users)
                    await pipe.execute()
            except Exception:
                log.warning("presence refresh failed", exc_info=True)

    async def online_in_role(self, organization_id: uuid.UUID, role: str) -> set[uuid.UUID]:
        """The users of this role with a socket open now, in any web process (while Redis is away,
        in this one: assignment goes on with what this process knows)."""
        if self.runtime.redis is not None:
            try:
                members = await self.runtime.redis.zrangebyscore(
                    _presence_key(self.runtime.settings, organization_id, role),
                    time.time() - PRESENCE_SECONDS,
                    "+inf",
                )
            except RedisError:
                log.warning("presence read from this process only: Redis is unavailable")
            else:
                return {uuid.UUID(text_of(member).split(":", 1)[0]) for member in members}
        if self.server is None:
            return set()
        sids = self.server.manager.rooms.get("/", {}).get(role_room(organization_id, role), {})
        return {self._users[sid].id for sid in sids if sid in self._users}

    async def close_sockets(self, room: str, reason: str) -> None:
        """Disconnect every socket in a room (a logout, a removed user, a changed role), in every
        web process; the client may reconnect and gets rooms that fit its access now."""
        await self.emit(SessionEnded.name, SessionEnded(reason=reason), [room], wait=True)
        sids: set[str] = set()
        if self.runtime.redis is not None:
            try:
                sids = {
                    text_of(s)
                    for s in await self.runtime.redis.smembers(_sockets_key(self.runtime.settings, room))
                }
            except RedisError:
                log.warning("sockets of other processes not closed: Redis is unavailable", room=room)
        if self.server is not None:
            sids |= {sid for sid, _ in self.server.manager.get_participants("/", room)}
        for sid in sids:
            if self.server is not None:
                await self.server.disconnect(sid)
            elif self._writer is not None:
                await self._writer.disconnect(sid, namespace="/")


class SocketEvent(msgspec.Struct, kw_only=True, rename="camel"):
    """A server-to-client event: `name` is what the client listens for, the fields its payload
    (camelCase, as the seed names them: `chatId`, `campaignId`). Each package declares its own in
    its `events.py` with `@socket_event`; `push` sends one to its audience after the commit."""

    name: ClassVar[str]


_socket_events: dict[str, type[SocketEvent]] = {}


def socket_event(cls: type[S]) -> type[S]:
    """Declare a socket event; its name is taken once (the AsyncAPI document lists them all)."""
    existing = _socket_events.get(cls.name)
    if existing is not None and existing is not cls:
        raise ValueError(f"socket event {cls.name!r} is already declared by {existing.__qualname__}")
    _socket_events[cls.name] = cls
    return cls


def declared_socket_events() -> dict[str, type[SocketEvent]]:
    return dict(_socket_events)


def push(session: HubAsyncSession, message: SocketEvent, to: Audience) -> None:
    """Send a declared event to its audience once the session's transaction commits."""
    if type(message).name not in _socket_events:
        raise ValueError(f"{type(message).__qualname__} is not declared with @socket_event")
    push_after_commit(session, message.name, message, user_ids=to.user_ids, roles=to.roles)


@socket_event
class SessionEnded(SocketEvent, kw_only=True):
    """The hub closed this login's sockets: logged out, removed, a new role or a new password
    (`reason`); the client asks for its session again and reconnects with the access it has now."""

    name: ClassVar[str] = "sessionEnded"
    reason: str


@socket_event
class ResyncNeeded(SocketEvent, kw_only=True):
    """This web process lost the channel it shares with the others and has it back: events sent
    meanwhile were missed, so the client reads again what it shows, changed `since` then."""

    name: ClassVar[str] = "resyncNeeded"
    reason: str
    since: datetime


# AI answers (`hub.ai`), written to the person who asked and to nobody else.
@socket_event
class AIChunk(SocketEvent, kw_only=True):
    """The next piece of an AI answer being written, to the person who asked (only them)."""

    name: ClassVar[str] = "aiChunk"
    request_id: str
    text: str


class AISource(msgspec.Struct, kw_only=True, rename="camel"):
    """An article (or a saved answer of the team) an AI answer was grounded in and cites."""

    id: str
    title: str
    kind: str  # article, canned


@socket_event
class AIDone(SocketEvent, kw_only=True):
    """An AI answer is whole: its full text and the credits it used."""

    name: ClassVar[str] = "aiDone"
    request_id: str
    text: str
    credits: int
    sources: list[AISource] = msgspec.field(default_factory=list)  # what the answer cites


@socket_event
class AIFailed(SocketEvent, kw_only=True):
    """An AI answer could not be written (or was cancelled): what to tell the person."""

    name: ClassVar[str] = "aiFailed"
    request_id: str
    detail: str
    cancelled: bool


def push_after_commit(
    session: HubAsyncSession,
    event: str,
    data: Any,
    *,
    user_ids: Iterable[uuid.UUID] = (),
    roles: Iterable[str] = (),
) -> None:
    """Push once the session's transaction commits; a rolled-back change is never announced."""
    from hub.runtime import current

    organization_id = session.organization_id
    if organization_id is None:
        raise ValueError("pushes belong to one organization; use a tenant session")
    users, role_list = list(user_ids), list(roles)

    async def send() -> None:
        pusher = current().pusher
        if pusher is not None:
            await pusher.push(event, data, organization_id=organization_id, user_ids=users, roles=role_list)

    session.after_commit(send)


ClientHandler = Callable[[Runtime, CurrentUser, Any], Awaitable[Any]]
_client_events: dict[str, ClientHandler] = {}


def declared_client_events() -> list[str]:
    return list(_client_events)


def on_client_event(name: str) -> Callable[[ClientHandler], ClientHandler]:
    """Register what a client-sent event does (`markAsRead`, say). The handler gets the runtime,
    the connected user and the event's data; what it returns is the client's acknowledgement."""

    def register(handler: ClientHandler) -> ClientHandler:
        _client_events[name] = handler
        return handler

    return register


def _client_event_handler(server: socketio.AsyncServer, runtime: Runtime, handler: ClientHandler) -> Any:
    from hub.errors import HubError
    from hub.i18n import choose_language, translate
    from hub.runtime import bind, unbind

    async def on_event(sid: str, data: Any = None) -> Any:
        user: CurrentUser = (await server.get_session(sid))["user"]
        token = bind(runtime)
        try:
            return await handler(runtime, user, data)
        except HubError as error:
            language = choose_language(
                preferred=user.preferred_language,
                accept_language=None,
                organization_default=user.organization_language,
            )
            return {"error": error.status_code, "detail": translate(language, error.message, **error.params)}
        finally:
            unbind(token)

    return on_event


class SharedWriter(socketio.AsyncRedisManager):
    """Emits through Redis to every web process's sockets (this one's too, when it has any)."""

    async def emit_many(self, emissions: list[Emission]) -> None:
        """Several emits in one round trip: delivered here first, then published in one pipeline."""
        messages = [
            {
                "method": "emit",
                "event": event,
                "data": [payload],
                "binary": False,
                "namespace": "/",
                "room": rooms,
                "skip_sid": None,
                "callback": None,
                "host_id": self.host_id,
            }
            for event, payload, rooms in emissions
        ]
        if not self.write_only:
            for message in messages:
                await self._handle_emit(message)
        for retries_left in (1, 0):  # as the library's own publish: one retry on a new connection
            try:
                if not getattr(self, "connected", False):
                    self._redis_connect()
                async with self.redis.pipeline(transaction=False) as pipe:
                    for message in messages:
                        pipe.publish(self.channel, self.json.dumps(message))
                    await pipe.execute()
                return
            except Exception:
                if not retries_left:
                    log.error("socket events not shared: Redis is unavailable", exc_info=True)
                self.connected = False


class SharedRooms(SharedWriter, LocalRooms):
    """Rooms shared by every web process through Redis. While Redis is away this process's
    sockets receive nothing (every event goes through Redis, even to the process that sent it),
    and they stay connected, so they would never know: once the channel is subscribed again, each
    of them is told `resyncNeeded {since}`, the last moment this process surely heard the
    channel, which a client answers by reading again what it shows (as after a reconnect), in one
    listing per view (`changed_since`)."""

    async def _redis_listen_with_retries(self) -> AsyncIterator[Any]:
        # python-socketio's own loop, which also knows when it subscribed again after a loss.
        retry_sleep = 1.0
        subscribed = lost = False
        last_heard = utcnow()
        while True:
            try:
                if not subscribed:
                    self._redis_connect()
                    await self.pubsub.subscribe(self.channel)
                    subscribed, retry_sleep = True, 1.0
                    if lost:
                        lost = False
                        log.warning("shared rooms subscribed again: telling this process's sockets")
                        # Straight to this process's sockets: the base manager's emit, not Redis.
                        told = ResyncNeeded(reason="missed_events", since=last_heard)
                        await LocalRooms.emit(self, told.name, msgspec.to_builtins(told), "/")
                async for message in self.pubsub.listen():
                    last_heard = utcnow()
                    yield message
                subscribed = False  # the subscription ended without an error: take it again
            except Exception as error:
                log.warning("shared rooms lost Redis", error=str(error), retry_in=retry_sleep)
                subscribed, lost = False, True
                await asyncio.sleep(retry_sleep)
                retry_sleep = min(retry_sleep * 2, 10.0)


def build_socket_server(runtime: Runtime) -> socketio.AsyncServer:
    settings = runtime.settings
    manager = (
        SharedRooms(settings.redis_url, channel=_channel(settings)) if settings.redis_url else LocalRooms()
    )
    manager.max_queued = settings.socket_max_queued
    server = socketio.AsyncServer(
        async_mode="asgi",
        client_manager=manager,
        cors_allowed_origins=list(settings.cors_origins) or None,
        logger=False,
        engineio_logger=False,
        ping_interval=settings.socket_ping_interval,
    )
    expiry_timers: dict[str, asyncio.TimerHandle] = {}

    @server.event
    async def connect(sid: str, _environ: dict[str, Any], auth: Any) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token:
            raise socketio.exceptions.ConnectionRefusedError("unauthorized")
        try:
            user: CurrentUser = await authenticate_token(runtime, token)
        except InvalidToken:
            raise socketio.exceptions.ConnectionRefusedError("unauthorized") from None
        await server.save_session(
            sid,
            {"user": user, "user_id": str(user.id), "token_id": user.token_id},
        )
        for room in (
            org_room(user.organization_id),
            role_room(user.organization_id, user.role),
            user_room(user.id),
            token_room(user.token_id),
        ):
            await server.enter_room(sid, room)
        if runtime.pusher is not None:
            await runtime.pusher.arrived(sid, user)
        # A socket lives no longer than its token.
        remaining = (user.token_expires_at - utcnow()).total_seconds()
        expiry_timers[sid] = asyncio.get_running_loop().call_later(
            max(remaining, 0), lambda: asyncio.ensure_future(server.disconnect(sid))
        )
        log.info("socket connected", user_id=str(user.id), role=user.role)

    @server.event
    async def disconnect(sid: str, *_reason: Any) -> None:
        timer = expiry_timers.pop(sid, None)
        if timer is not None:
            timer.cancel()
        if runtime.pusher is not None:
            await runtime.pusher.left(sid)

    for name, handler in _client_events.items():
        server.on(name, _client_event_handler(server, runtime, handler))
    return server
