"""The WhatsApp profiles one process holds: a lease per profile in Redis, renewed while held and
taken over when its holder dies, and calls routed to the holder from any process."""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections import Counter
from typing import Any, cast

import msgspec
import structlog
from redis.exceptions import RedisError
from sqlalchemy import select

from channels.models import Channel
from channels.whatsapp.keys import keys_of
from channels.whatsapp.session import ProfileSession
from hub import metrics
from hub.realtime import text_of
from hub.runtime import Runtime, bind, unbind

# A routed call must be started by the holder within CALL_START_SECONDS of being asked (or it is
# refused unstarted); the caller waits CALL_TIMEOUT_SECONDS in all for the answer.
CALL_START_SECONDS = 20

log = structlog.get_logger(__name__)


CALL_TIMEOUT_SECONDS = 60


# Renewing a lease is one step in Redis: extend it if it is ours; take it again if it is gone (an
# emptied Redis) and nobody else took it; otherwise it is another process's (0).
_RENEW = """
local holder = redis.call('get', KEYS[1])
if holder == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
elseif not holder then
  redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


# Letting go of a lease only if it is still ours.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class Sessions:
    """The profiles this process holds; kept on the runtime.

    With Redis, holding a profile takes a lease that this process renews; if the process dies the
    lease lapses and another process may take the profile, so one account never has two clients.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.by_channel: dict[uuid.UUID, ProfileSession] = {}
        self.holder = uuid.uuid4().hex
        self._renewal: asyncio.Task[None] | None = None
        self._calls: asyncio.Task[None] | None = None
        self._adoption: asyncio.Task[None] | None = None
        self.lease_ms = int(runtime.settings.whatsapp_lease_seconds * 1000)
        self._renewed: dict[uuid.UUID, float] = {}  # when each lease was last surely ours

    def get(self, channel_id: uuid.UUID) -> ProfileSession | None:
        return self.by_channel.get(channel_id)

    def _lease_key(self, channel_id: uuid.UUID) -> str:
        return f"{self.runtime.settings.task_queue}:whatsapp:lease:{channel_id}"

    async def ensure(self, channel: Channel) -> ProfileSession | None:
        """Start (or keep) the profile's session here; None when another process holds it."""
        session = self.by_channel.get(channel.id)
        if session is None:
            redis = self.runtime.redis
            if redis is not None:
                taken = await redis.eval(_RENEW, 1, self._lease_key(channel.id), self.holder, self.lease_ms)
                if not taken:
                    return None
                self._renewed[channel.id] = time.monotonic()
                if self._renewal is None or self._renewal.done():
                    self._renewal = asyncio.create_task(self._renew_leases())
                if self._calls is None or self._calls.done():
                    self._calls = asyncio.create_task(self._serve_calls())
            session = self.by_channel[channel.id] = ProfileSession(self.runtime, channel)
        session.start()
        return session

    async def holder_of(self, channel_id: uuid.UUID) -> str | None:
        assert self.runtime.redis is not None
        holder = await self.runtime.redis.get(self._lease_key(channel_id))
        return text_of(holder) if holder else None

    def _calls_key(self, holder: str) -> str:
        return f"{self.runtime.settings.task_queue}:whatsapp:calls:{holder}"

    async def call_holder(
        self, channel: Channel, operation: str, payload: dict[str, Any], *, finish_by: float | None = None
    ) -> Any:
        """Ask the process holding the profile to carry out an operation, and wait for its answer.
        With `finish_by` (Unix time), the holder neither begins it after then nor runs past it."""
        from channels.adapters import ChannelError

        redis = self.runtime.redis
        assert redis is not None
        holder = await self.holder_of(channel.id)
        if holder is None:
            raise ChannelError(f"profile {channel.name} is not connected", retryable=True)
        reply_key = f"{self.runtime.settings.task_queue}:whatsapp:reply:{uuid.uuid4().hex}"
        seconds, micros = await redis.time()  # one clock for every process: Redis's
        now = seconds + micros / 1e6
        request = {
            "reply": reply_key,
            "channel_id": str(channel.id),
            "operation": operation,
            "payload": payload,
            "start_by": now + CALL_START_SECONDS,
        }
        wait = CALL_TIMEOUT_SECONDS
        if finish_by is not None:  # the caller's moment, on Redis's clock
            left = finish_by - time.time()
            request["finish_by"] = now + left
            request["start_by"] = min(now + CALL_START_SECONDS, now + left)
            wait = max(1, min(wait, math.ceil(left)))
        await redis.rpush(self._calls_key(holder), msgspec.msgpack.encode(request))
        answered = await redis.blpop([reply_key], timeout=wait)
        if answered is None:
            # The holder may have sent it and died before answering.
            raise ChannelError(
                f"profile {channel.name}: its process did not answer",
                retryable=True,
                in_doubt=operation == "send",
            )
        answer = msgspec.msgpack.decode(cast(bytes, answered[1]))  # this client answers bytes
        if not answer["ok"]:
            raise ChannelError(
                answer["reason"], retryable=answer["retryable"], in_doubt=answer.get("in_doubt", False)
            )
        return answer["result"]

    async def _serve_calls(self) -> None:
        """Carry out what other processes ask of the profiles held here."""
        from channels.adapters import ChannelError
        from channels.whatsapp.adapter import run_here

        redis = self.runtime.redis
        assert redis is not None
        token = bind(self.runtime)
        pause = 0.5
        try:
            while True:
                try:
                    popped = await redis.blpop([self._calls_key(self.holder)], timeout=5)
                except RedisError:
                    # Redis is away: wait and listen again; the callers' requests wait in Redis.
                    log.warning("whatsapp calls not served: Redis is unavailable", retry_in=pause)
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 10)
                    continue
                pause = 0.5
                if popped is None:
                    continue
                request = msgspec.msgpack.decode(cast(bytes, popped[1]))
                async with self.runtime.db.system_session() as session:
                    channel = await session.get(Channel, uuid.UUID(request["channel_id"]))
                try:
                    if channel is None:
                        raise ChannelError("profile not found", retryable=False)
                    seconds, micros = await redis.time()
                    now = seconds + micros / 1e6
                    if now > request.get("start_by", now):
                        # The caller may have given up and tried again: not started, surely not sent.
                        raise ChannelError("the call came too late to be carried out", retryable=True)
                    if request["operation"] == "logout":
                        await self.logout(channel)
                        result = None
                    else:
                        finish_by = request.get("finish_by")
                        try:
                            async with asyncio.timeout(None if finish_by is None else finish_by - now):
                                result = await run_here(channel, request["operation"], request["payload"])
                        except TimeoutError as error:
                            # Over when the caller said, so whoever settles it never races it.
                            raise ChannelError(
                                "the call did not finish in time", retryable=True, in_doubt=True
                            ) from error
                    answer = {"ok": True, "result": result}
                except ChannelError as error:
                    answer = {
                        "ok": False,
                        "reason": error.reason,
                        "retryable": error.retryable,
                        "in_doubt": error.in_doubt,
                    }
                except RedisError:
                    continue  # its start-by time could not be read: not started; the caller retries
                try:
                    await redis.rpush(request["reply"], msgspec.msgpack.encode(answer))
                    await redis.expire(request["reply"], CALL_TIMEOUT_SECONDS)
                except RedisError:
                    log.warning("whatsapp call answered into the void: Redis is unavailable")
        finally:
            unbind(token)

    async def _renew_leases(self) -> None:
        """Renew every lease held here, a third of its life apart. A failed renewal (Redis away) is
        tried again; the session stops only when the lease is truly lost: another process holds
        it, or it could not be renewed for as long as it lasts (another may have taken it)."""
        redis = self.runtime.redis
        assert redis is not None
        while self.by_channel:
            await asyncio.sleep(self.lease_ms / 3000)
            for channel_id, session in list(self.by_channel.items()):
                try:
                    ours = await redis.eval(
                        _RENEW, 1, self._lease_key(channel_id), self.holder, self.lease_ms
                    )
                except RedisError:
                    unsure = time.monotonic() - self._renewed.get(channel_id, 0.0)
                    if unsure * 1000 < self.lease_ms:
                        log.warning("whatsapp lease not renewed; trying again", profile=str(channel_id))
                        continue
                    ours = 0
                if ours:
                    self._renewed[channel_id] = time.monotonic()
                    continue
                log.warning("whatsapp lease lost; stopping the session", profile=str(channel_id))
                self.by_channel.pop(channel_id, None)
                self._renewed.pop(channel_id, None)
                await session.stop()

    async def logout(self, channel: Channel) -> None:
        """Log the number out wherever its session runs. A profile that runs nowhere forgets its
        stored keys, so it cannot come back without a new QR (unlink it on the phone as well)."""
        running = self.get(channel.id)
        if running is not None:
            await running.logout()
            await self.release(channel.id)
        elif self.runtime.redis is not None and await self.holder_of(channel.id) is not None:
            await self.call_holder(channel, "logout", {})
        else:
            await ProfileSession(self.runtime, channel).logout()

    async def release(self, channel_id: uuid.UUID) -> None:
        session = self.by_channel.pop(channel_id, None)
        if session is not None:
            await session.stop()
        self._renewed.pop(channel_id, None)
        if self.runtime.redis is not None:
            await self.runtime.redis.eval(_RELEASE, 1, self._lease_key(channel_id), self.holder)

    async def start_all(self) -> None:
        """Reconnect the paired profiles nobody holds; with Redis, keep doing so every third of a
        lease, so a number whose process died is taken up here once its lease lapses."""
        await self.adopt_orphans()
        if self.runtime.redis is not None and self._adoption is None:
            self._adoption = asyncio.create_task(self._keep_adopting())

    async def adopt_orphans(self) -> int:
        async with self.runtime.db.system_session() as session:
            paired = [
                profile
                for profile in await session.scalars(select(Channel).where(Channel.kind == "whatsapp"))
                if profile.config.get("paired") and profile.id not in self.by_channel
            ]
        keys = keys_of(self.runtime)
        profiles = [profile for profile in paired if await keys.has(profile.id, profile.config)]
        if not profiles:
            return 0
        redis = self.runtime.redis
        holders = (
            await redis.mget([self._lease_key(p.id) for p in profiles])
            if redis is not None
            else [None] * len(profiles)
        )
        adopted = 0
        for profile, holder in zip(profiles, holders, strict=True):
            if holder is None and await self.ensure(profile) is not None:
                log.info("whatsapp profile reconnecting here", profile=str(profile.id))
                adopted += 1
        return adopted

    async def _keep_adopting(self) -> None:
        token = bind(self.runtime)
        try:
            while True:
                await asyncio.sleep(self.lease_ms / 3000)
                try:
                    await self.adopt_orphans()
                except Exception:
                    log.warning("whatsapp profiles not looked after this time", exc_info=True)
        finally:
            unbind(token)

    async def stop_all(self) -> None:
        if self._adoption is not None:
            self._adoption.cancel()
            self._adoption = None
        for channel_id in list(self.by_channel):
            await self.release(channel_id)
        for task in (self._renewal, self._calls):
            if task is not None:
                task.cancel()


def sessions_of(runtime: Runtime) -> Sessions:
    found = runtime.extras.get("whatsapp")
    if found is None:
        found = runtime.extras["whatsapp"] = Sessions(runtime)
    return found


SESSION_STATES = ("connecting", "qr", "ready", "disconnected", "logged_out")


def count_sessions(runtime: Runtime) -> None:
    """For the metrics: the profiles this process holds, by state."""
    held = runtime.extras.get("whatsapp")
    states = Counter(session.state for session in held.by_channel.values()) if held is not None else Counter()
    for state in {*SESSION_STATES, *states}:
        metrics.WHATSAPP_SESSIONS.labels(state).set(states[state])


metrics.on_refresh(count_sessions)
