"""The shared resources of one hub process: settings, database, Redis, counters, broker, sockets.

A web process, a worker and the scheduler each build one Runtime at start. Request handlers reach
it through the application's state; tasks, which get only ids, reach it through `current()`.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

from litestar.connection import ASGIConnection
from redis.asyncio import Redis

from hub.config import Settings
from hub.db import Database
from hub.throttle import Counters, Gate, KeyedGate, LoopLag, MemoryCounters, RedisCounters, SendSlots

if TYPE_CHECKING:
    from taskiq import AsyncBroker

    from hub.realtime import Pusher


class Runtime:
    # A plain class, not a dataclass: Litestar would try to validate a dataclass dependency.
    def __init__(self, *, settings: Settings, db: Database, redis: Redis | None, counters: Counters) -> None:
        self.settings = settings
        self.db = db
        self.redis = redis
        self.counters = counters
        self.broker: AsyncBroker | None = None
        self.pusher: Pusher | None = None
        self.extras: dict[str, Any] = {}
        # Posts that channels make to us (messages, receipts): how many this process works on at
        # once, and how many of one channel it reads at once (so one channel's slow bodies, or a
        # stranger's, never hold the others' posts).
        # A web process also stops taking them while its event loop runs late or is busy all the
        # time, or while a post, a database checkout or a socket push has waited too long: it
        # cannot keep up. How many it takes at once follows how long they take (`Gate`).
        self.loop_lag = LoopLag()
        self.inbound_gate = Gate(
            settings.inbound_max_pending,
            lag=self.loop_lag,
            max_lag=settings.inbound_max_lag,
            max_busy=settings.inbound_max_busy,
            max_wait=settings.inbound_max_wait,
            database_wait=lambda: db.queue_wait,
            backlog=self._fanout_wait,
        )
        self.channel_gates = KeyedGate(settings.inbound_max_pending)
        self.send_slots = SendSlots(settings.outbound_per_channel, settings.outbound_max)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        redis = Redis.from_url(settings.redis_url, decode_responses=False) if settings.redis_url else None
        counters: Counters = (
            RedisCounters(redis, prefix=f"{settings.task_queue}:count:")
            if redis is not None
            else MemoryCounters()
        )
        return cls(settings=settings, db=Database(settings), redis=redis, counters=counters)

    def _fanout_wait(self) -> float:
        return self.pusher.fanout.oldest_wait if self.pusher is not None else 0.0

    async def close(self) -> None:
        if self.pusher is not None:
            await self.pusher.fanout.close()  # what was committed is announced before we go
        if self.redis is not None:
            await self.redis.aclose()
        await self.db.dispose()


# The runtime of the work at hand: bound per request, per task and in the lifespan, so that two
# hubs in one process (a test, or a second web app) never borrow each other's database or broker.
_bound: ContextVar[Runtime | None] = ContextVar("hub_runtime", default=None)
_stack: list[Runtime] = []


def activate(runtime: Runtime) -> None:
    _stack.append(runtime)


def deactivate(runtime: Runtime) -> None:
    if runtime in _stack:
        _stack.remove(runtime)


def bind(runtime: Runtime) -> Token[Runtime | None]:
    """Make `runtime` the current one for this task and the tasks it starts."""
    return _bound.set(runtime)


def unbind(token: Token[Runtime | None]) -> None:
    _bound.reset(token)


def current() -> Runtime:
    bound = _bound.get()
    if bound is not None:
        return bound
    if not _stack:
        raise RuntimeError("no hub runtime is active in this process")
    return _stack[-1]


def runtime_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Runtime:
    return connection.app.state.runtime
