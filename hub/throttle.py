"""Counting attempts in fixed time windows: the API rate limit and the login throttle; and the
gate that turns work away when a process already has as much in progress as it can do quickly.

With Redis the counts are shared by every web process (INCR is atomic); embedded, they live in
this process's memory.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Protocol

import structlog
from litestar.connection import ASGIConnection
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send
from redis.asyncio import Redis
from redis.exceptions import RedisError

from hub.errors import Busy, TooManyRequests

log = structlog.get_logger(__name__)


class Counters(Protocol):
    async def hit(self, key: str, window_seconds: int) -> int:
        """Count one more in the key's current window and return the count so far."""

    async def count(self, key: str) -> int: ...

    async def reset(self, key: str) -> None: ...


class MemoryCounters:
    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, float]] = {}

    def _live(self, key: str) -> tuple[int, float] | None:
        entry = self._counts.get(key)
        if entry and entry[1] <= time.monotonic():
            del self._counts[key]
            return None
        return entry

    async def hit(self, key: str, window_seconds: int) -> int:
        entry = self._live(key)
        count, expires = entry if entry else (0, time.monotonic() + window_seconds)
        self._counts[key] = (count + 1, expires)
        if len(self._counts) > 100_000:  # drop expired windows now and then
            for stale in [k for k, (_, e) in self._counts.items() if e <= time.monotonic()]:
                del self._counts[stale]
        return count + 1

    async def count(self, key: str) -> int:
        entry = self._live(key)
        return entry[0] if entry else 0

    async def reset(self, key: str) -> None:
        self._counts.pop(key, None)


class RedisCounters:
    """Counts shared by every process through Redis. While Redis is away each process counts in
    its own memory instead (the limits still hold, per process) and `degraded` says since when,
    for `/health`; nothing a count guards answers 500 because Redis is gone."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self.fallback = MemoryCounters()
        self.degraded: float | None = None

    def _lost(self, error: RedisError) -> None:
        if self.degraded is None:
            log.warning("Redis is unavailable: counting in this process until it returns", error=str(error))
            self.degraded = time.time()

    def _back(self) -> None:
        if self.degraded is not None:
            log.info("Redis is back: counting through it again")
            self.degraded = None

    async def hit(self, key: str, window_seconds: int) -> int:
        try:
            count = await self._shared_hit(key, window_seconds)
        except RedisError as error:
            self._lost(error)
            return await self.fallback.hit(key, window_seconds)
        self._back()
        return count

    async def count(self, key: str) -> int:
        try:
            found = int(await self.redis.get(self.prefix + key) or 0)
        except RedisError as error:
            self._lost(error)
            return await self.fallback.count(key)
        self._back()
        return max(found, await self.fallback.count(key))

    async def reset(self, key: str) -> None:
        await self.fallback.reset(key)
        try:
            await self.redis.delete(self.prefix + key)
        except RedisError as error:
            self._lost(error)

    async def _shared_hit(self, key: str, window_seconds: int) -> int:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(self.prefix + key)
            pipe.expire(self.prefix + key, window_seconds, nx=True)
            count, _ = await pipe.execute()
        return int(count)


def is_channel_post(path: str) -> bool:
    """A post a channel makes to the hub (a message, a receipt): signed, not signed in."""
    return path.startswith("/api/channels/") and path.endswith(("/inbound", "/receipts"))


def client_address(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    return connection.client.host if connection.client else "unknown"


class RateLimitMiddleware(ASGIMiddleware):
    """Requests per minute per organization (per address before login), over every web process."""

    @staticmethod
    def should_bypass_for_scope(scope: Scope) -> bool:
        path = scope["path"]
        # Channel posts are authenticated by their signature, and a busy bridge posts from one address.
        return path == "/health" or path.startswith("/schema") or is_channel_post(path)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        from hub.runtime import runtime_of

        if scope["type"] != "http":
            await next_app(scope, receive, send)
            return
        connection: ASGIConnection[Any, Any, Any, Any] = ASGIConnection(scope)
        runtime = runtime_of(connection)
        user = scope.get("user")
        who = f"org:{user.organization_id}" if user is not None else f"ip:{client_address(connection)}"
        window = int(time.time() // 60)
        count = await runtime.counters.hit(f"rate:{who}:{window}", 60)
        limit = runtime.settings.api_rate_limit
        if count > limit:
            retry_after = str(60 - int(time.time()) % 60)
            raise TooManyRequests(headers={"Retry-After": retry_after, "RateLimit-Limit": str(limit)})
        await next_app(scope, receive, send)


class RecentWorst:
    """The worst of what was noted in the last `window` seconds (0 when nothing was)."""

    def __init__(self, window: float = 0.5) -> None:
        self.window = window
        self.samples: collections.deque[tuple[float, float]] = collections.deque()  # (when, value)

    def _forget_old(self, now: float) -> None:
        while self.samples and self.samples[0][0] <= now - self.window:
            self.samples.popleft()

    def note(self, value: float) -> None:
        now = time.monotonic()
        self._forget_old(now)
        self.samples.append((now, value))

    @property
    def value(self) -> float:
        self._forget_old(time.monotonic())
        return max((value for _, value in self.samples), default=0.0)


class LoopLag:
    """How late this process's event loop runs callbacks, measured by a timer that asks to wake
    every `TICK` seconds and notes how much later it woke; and how busy the loop's thread is, the
    share of the last `BUSY_WINDOW` seconds it spent working. A loop that runs late is a process
    that cannot keep up: every socket's heartbeat and every request wait by as much. A loop busy
    all the time is one about to: each callback still runs on time, but the work in progress
    shares the thread, so each piece of it takes longer the more there is."""

    TICK = 0.02
    BUSY_WINDOW = 0.25

    def __init__(self) -> None:
        self.recent = RecentWorst()  # the lag now: the worst sample of the last half second
        self._work: collections.deque[tuple[float, float]] = collections.deque()  # (wall, thread CPU)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        work = self._work
        while True:
            expected = loop.time() + self.TICK
            await asyncio.sleep(self.TICK)
            now = loop.time()
            self.recent.note(max(0.0, now - expected))
            work.append((now, time.thread_time()))  # this runs on the loop's thread
            while len(work) > 2 and work[1][0] <= now - self.BUSY_WINDOW:
                work.popleft()

    @property
    def seconds(self) -> float:
        return self.recent.value

    @property
    def busy(self) -> float:
        """The share of the last quarter second the loop's thread spent working, 0 to 1."""
        if len(self._work) < 2:
            return 0.0
        (wall_then, cpu_then), (wall_now, cpu_now) = self._work[0], self._work[-1]
        return (cpu_now - cpu_then) / (wall_now - wall_then) if wall_now > wall_then else 0.0


class Gate:
    """Requests of one kind in progress in this process, within a window that follows how long
    they take; none while its event loop runs more than `max_lag` seconds late or is busier than
    `max_busy` (a share), or while something waits longer than `max_wait` seconds: the request
    itself, a database checkout asked for now, or the oldest of the socket pushes the process has
    yet to emit (`backlog`). One more is refused at once (503 with Retry-After) instead of
    waiting in a queue: the process keeps answering quickly and keeps its sockets' heartbeats, and
    the sender, who got no acknowledgement, posts again later.

    The window is the number of requests that may be in progress at once, between `LEAST` and
    `limit`, and is learnt as TCP learns its own: a request that took longer than `max_wait` from
    its arrival narrows it by a tenth (once per `max_wait`, whatever the number of slow ones), and
    each one done in time while the window was half used widens it by one over its size. Work in
    progress shares the process's thread and its database, so each piece of it takes longer the
    more there is: the window keeps what is taken on to what finishes in time, whatever slows it
    (the CPU, a database that shares the machine), and no signal has to name the cause."""

    LEAST = 4
    NARROWED_BY = 0.9

    def __init__(
        self,
        limit: int,
        retry_after_seconds: int = 2,
        *,
        lag: LoopLag | None = None,
        max_lag: float = float("inf"),
        max_busy: float = float("inf"),
        max_wait: float = float("inf"),
        database_wait: Callable[[], float] | None = None,
        backlog: Callable[[], float] | None = None,
    ) -> None:
        self.limit = limit
        self.window = float(limit)
        self.max_wait = max_wait
        self.database_wait = database_wait
        self.retry_after = str(retry_after_seconds)
        self.pending = 0
        self.lag = lag
        self.max_lag = max_lag
        self.max_busy = max_busy
        self.backlog = backlog
        self.refused = 0
        self._narrowed_at = 0.0

    def overloaded(self) -> str | None:
        """Why the process takes no more now (None: it does)."""
        if self.pending >= self.window:
            return "in_progress"
        if self.lag is not None and self.lag.seconds > self.max_lag:
            return "loop_lag"
        if self.lag is not None and self.lag.busy > self.max_busy:
            return "loop_busy"
        if self.database_wait is not None and self.database_wait() > self.max_wait:
            return "database_wait"
        if self.backlog is not None and self.backlog() > self.max_wait:
            return "fanout_backlog"
        return None

    @contextlib.contextmanager
    def enter(self, waited: float = 0.0) -> Iterator[None]:
        """Take a slot; `waited` is how long this request already waited in the process (for the
        database, say): past `max_wait` it is refused like one that would wait that long. A
        refusal says why (`Busy.reason`), for the operators' metrics and log."""
        reason = "waited" if waited > self.max_wait else self.overloaded()
        if reason is not None:
            self._refuse(reason)
        began = time.monotonic()
        self.pending += 1
        try:
            yield
        finally:
            self.pending -= 1
            self._learn(waited + time.monotonic() - began, in_use=self.pending + 1)

    def _learn(self, took: float, *, in_use: int) -> None:
        if took > self.max_wait:
            now = time.monotonic()
            if now - self._narrowed_at >= self.max_wait:
                self.window = max(self.LEAST, self.window * self.NARROWED_BY)
                self._narrowed_at = now
        elif in_use * 2 >= self.window:
            self.window = min(self.limit, self.window + 1 / self.window)

    def _refuse(self, reason: str) -> None:
        self.refused += 1
        refusal = Busy(headers={"Retry-After": self.retry_after})
        refusal.reason = reason
        raise refusal


class KeyedGate:
    """A Gate per key (a channel, say): one key's slow or stuck requests fill only its own slots."""

    def __init__(self, limit: int, retry_after_seconds: int = 2) -> None:
        self.limit = limit
        self.retry_after = str(retry_after_seconds)
        self.pending: dict[Any, int] = {}

    @contextlib.contextmanager
    def enter(self, key: Any) -> Iterator[None]:
        taken = self.pending.get(key, 0)
        if taken >= self.limit:
            refusal = Busy(headers={"Retry-After": self.retry_after})
            refusal.reason = "channel_in_progress"
            raise refusal
        self.pending[key] = taken + 1
        try:
            yield
        finally:
            left = self.pending[key] - 1
            if left:
                self.pending[key] = left
            else:
                del self.pending[key]


class SendSlots:
    """How many sends this process has in flight to the outside: per channel, and in all. A send
    waits for a slot holding nothing else, so one tenant's hanging receiver slows only itself."""

    def __init__(self, per_channel: int, overall: int) -> None:
        self.per_channel = per_channel
        self.overall = asyncio.Semaphore(overall)
        self.channels: dict[Any, asyncio.Semaphore] = {}
        self.waiting: dict[Any, int] = {}

    @contextlib.asynccontextmanager
    async def taken(self, channel: Any) -> AsyncIterator[None]:
        slot = self.channels.get(channel)
        if slot is None:
            slot = self.channels[channel] = asyncio.Semaphore(self.per_channel)
        self.waiting[channel] = self.waiting.get(channel, 0) + 1
        try:
            async with slot, self.overall:
                yield
        finally:
            self.waiting[channel] -= 1
            if not self.waiting[channel]:  # nobody holds or waits: forget the channel
                del self.waiting[channel]
                self.channels.pop(channel, None)
