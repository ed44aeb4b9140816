"""Background work with taskiq, and timed work that survives restarts.

Tasks are registered by name with `@task` and bound to the process's broker when it is built:
an InMemoryBroker in embedded mode (tasks run inside the server), a RedisStreamBroker with its
own queue in scaled mode (messages are acknowledged only after the task ran, so a killed worker's
message is delivered again). Tasks take ids, open their own session and tenant context.

Timed work is a row in `scheduled_jobs`: the scheduler reads due rows, sends them to the broker
and marks them sent, so a restart of any process loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import delete, or_, select, update
from taskiq import (
    AckableMessage,
    AsyncBroker,
    Context,
    InMemoryBroker,
    ScheduledTask,
    ScheduleSource,
    TaskiqDepends,
    TaskiqScheduler,
)
from taskiq.exceptions import ScheduledTaskCancelledError
from taskiq.schedule_sources import LabelScheduleSource
from taskiq_redis import RedisStreamBroker

from hub.config import Settings
from hub.db import HubAsyncSession, utcnow
from hub.models import PasswordReset, RevokedToken, ScheduledJob
from hub.runtime import Runtime

log = structlog.get_logger(__name__)

TaskFunction = Callable[..., Awaitable[Any]]
_tasks: dict[str, tuple[TaskFunction, dict[str, Any]]] = {}

# How far ahead the scheduler loads timed jobs, and how often it looks again.
SCHEDULE_HORIZON = timedelta(minutes=5)
SCHEDULE_REFRESH = timedelta(seconds=2)


def task(name: str, *, every_seconds: int | None = None) -> Callable[[TaskFunction], TaskFunction]:
    """Register a task under a stable name; `every_seconds` also runs it periodically."""

    def register(function: TaskFunction) -> TaskFunction:
        labels: dict[str, Any] = {}
        if every_seconds is not None:
            labels["schedule"] = [{"interval": every_seconds, "schedule_id": f"every:{name}"}]
        _tasks[name] = (function, labels)
        return function

    return register


class HubStreamBroker(RedisStreamBroker):
    """taskiq's Redis stream broker, made to outlive Redis: when Redis is away the worker waits
    with growing pauses instead of spinning; when it comes back empty (`NOGROUP`) the consumer
    group is made again. A message being worked on is claimed afresh every few seconds, so one
    left by a killed worker is idle soon and another worker takes it within `reclaim_seconds`,
    while one still being worked on is never taken twice."""

    def __init__(self, url: str, *, reclaim_seconds: float, **kwargs: Any) -> None:
        super().__init__(url, idle_timeout=int(reclaim_seconds * 1000), **kwargs)
        self.heartbeat_seconds = max(reclaim_seconds / 3, 0.5)

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        pause = 0.5
        while True:
            try:
                async with Redis(connection_pool=self.connection_pool) as redis:
                    while True:
                        for stream, message_id, data in await self._next_batch(redis):
                            pause = 0.5
                            yield self._worked_on(stream, message_id, data)
            except ResponseError as error:
                if "NOGROUP" not in str(error):
                    raise
                log.warning("the task stream came back empty: making its consumer group again")
                with contextlib.suppress(RedisError):
                    await self._recreate_group()
            except (RedisConnectionError, RedisTimeoutError, OSError) as error:
                log.warning("tasks not received: Redis is unavailable", error=str(error), retry_in=pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 10)

    async def _declare_consumer_group(self) -> None:
        """Made at start when Redis answers; a process started while Redis is away comes up all
        the same: a worker makes the group once Redis is back (`listen`), and others only send."""
        try:
            await super()._declare_consumer_group()
        except (RedisConnectionError, RedisTimeoutError, OSError) as error:
            log.warning("Redis is unavailable at start: going on without it", error=str(error))

    async def _recreate_group(self) -> None:
        """The group of an emptied Redis reads its stream from the start: everything in it was
        added since Redis came back, and none of it may be skipped."""
        async with Redis(connection_pool=self.connection_pool) as redis:
            with contextlib.suppress(ResponseError):  # another worker made it first
                await redis.xgroup_create(self.queue_name, self.consumer_group_name, id="0", mkstream=True)

    async def _next_batch(self, redis: Redis) -> list[tuple[Any, Any, bytes]]:
        """New messages, else messages whose worker stopped working on them."""
        fetched: Any = await redis.xreadgroup(
            self.consumer_group_name,
            self.consumer_name,
            {self.queue_name: ">"},
            block=self.block,
            noack=False,
            count=self.count,
        )
        found = [
            (stream, mid, fields[b"data"]) for stream, messages in fetched or [] for mid, fields in messages
        ]
        if found:
            return found
        claimed: Any = await redis.xautoclaim(
            name=self.queue_name,
            groupname=self.consumer_group_name,
            consumername=self.consumer_name,
            min_idle_time=self.idle_timeout,
            count=self.unacknowledged_batch_size,
        )
        return [(self.queue_name, mid, fields[b"data"]) for mid, fields in claimed[1] if fields]

    def _worked_on(self, stream: Any, message_id: Any, data: bytes) -> AckableMessage:
        """The message, claimed afresh until it is acknowledged."""

        async def keep_claimed() -> None:
            while True:
                await asyncio.sleep(self.heartbeat_seconds)
                with contextlib.suppress(RedisError):
                    async with Redis(connection_pool=self.connection_pool) as redis:
                        await redis.xclaim(
                            stream, self.consumer_group_name, self.consumer_name, 0, [message_id], justid=True
                        )

        heartbeat = asyncio.get_running_loop().create_task(keep_claimed())
        acknowledge = self._ack_generator(id=message_id, queue_name=stream)

        async def ack() -> None:
            heartbeat.cancel()
            await acknowledge()

        return AckableMessage(data=data, ack=ack)


def build_broker(settings: Settings) -> AsyncBroker:
    broker: AsyncBroker
    if settings.redis_url:
        broker = HubStreamBroker(
            url=settings.redis_url,
            queue_name=f"{settings.task_queue}:tasks",
            consumer_group_name=f"{settings.task_queue}:workers",
            reclaim_seconds=settings.task_reclaim_seconds,
        )
    else:
        broker = InMemoryBroker()
    for name, (function, labels) in _tasks.items():
        broker.register_task(_bound_to_broker_runtime(function), task_name=name, **labels)
    return broker


def _bound_to_broker_runtime(function: TaskFunction) -> TaskFunction:
    """Run the task with the runtime of the broker that received it as the current one."""
    from hub.runtime import bind, unbind

    async def run(*args: Any, context: Context = TaskiqDepends(), **kwargs: Any) -> Any:
        token = bind(context.state.runtime)
        try:
            return await function(*args, **kwargs)
        finally:
            unbind(token)

    run.__name__, run.__qualname__, run.__module__ = (
        function.__name__,
        function.__qualname__,
        function.__module__,
    )
    return run


async def kick(name: str, **kwargs: Any) -> None:
    """Send a task to the broker now."""
    from hub.runtime import current

    broker = current().broker
    if broker is None:
        raise RuntimeError("this process has no task broker")
    found = broker.find_task(name)
    if found is None:
        raise LookupError(f"unknown task {name!r}")
    await found.kiq(**kwargs)


async def schedule(
    session: HubAsyncSession,
    task_name: str,
    run_at: datetime,
    *,
    key: str | None = None,
    **kwargs: Any,
) -> None:
    """Run a task at a time, durably; with a key, the job of that key is moved instead (pending
    again for its new time, whatever it was: one statement, under the row's lock)."""
    if task_name not in _tasks:
        raise LookupError(f"unknown task {task_name!r}")
    if key is not None:
        moved = await session.execute(
            update(ScheduledJob)
            .where(ScheduledJob.key == key)
            .values(task_name=task_name, run_at=run_at, kwargs=kwargs, sent_at=None, claimed_at=None)
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount:  # type: ignore[attr-defined]  # an UPDATE's result has rowcount; the stubs type it as Result
            return
    session.add(
        ScheduledJob(
            organization_id=session.organization_id,
            task_name=task_name,
            kwargs=kwargs,
            run_at=run_at,
            key=key,
        )
    )


def _job_of(scheduled: ScheduledTask) -> tuple[uuid.UUID, datetime]:
    _, job_id, run_at = scheduled.schedule_id.split(":", 2)
    return uuid.UUID(job_id), datetime.fromisoformat(run_at)


class DatabaseScheduleSource(ScheduleSource):
    """Timed jobs from the `scheduled_jobs` table, due now or within the horizon.

    A job is claimed for the run time it was loaded with just before it is handed off, and marked
    sent for that run time after: a job moved meanwhile stays pending for its new time, two
    schedulers never both send one, and a job whose hand-off failed (the broker was away, the
    scheduler died) is listed again once its claim lapses, and handed off then."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__()
        # The runtime whose jobs these are, given, never looked up: a process may hold several hubs.
        self.runtime = runtime
        self.claim = timedelta(seconds=runtime.settings.timed_job_claim_seconds)

    async def get_schedules(self) -> list[ScheduledTask]:
        now = utcnow()
        async with self.runtime.db.system_session() as session:
            jobs = (
                await session.scalars(
                    select(ScheduledJob)
                    .where(
                        ScheduledJob.sent_at.is_(None),
                        ScheduledJob.run_at <= now + SCHEDULE_HORIZON,
                        or_(ScheduledJob.claimed_at.is_(None), ScheduledJob.claimed_at < now - self.claim),
                    )
                    .order_by(ScheduledJob.run_at)
                    .limit(1000)
                )
            ).all()
        return [
            ScheduledTask(
                task_name=job.task_name,
                labels={},
                args=[],
                kwargs=job.kwargs,
                schedule_id=f"job:{job.id}:{job.run_at.isoformat()}",  # exact, to the microsecond
                time=job.run_at,
            )
            for job in jobs
            if job.task_name in _tasks
        ]

    async def pre_send(self, scheduled: ScheduledTask) -> None:
        job_id, run_at = _job_of(scheduled)
        now = utcnow()
        async with self.runtime.db.system_session() as session:
            claimed = await session.execute(
                update(ScheduledJob)
                .where(
                    ScheduledJob.id == job_id,
                    ScheduledJob.run_at == run_at,
                    ScheduledJob.sent_at.is_(None),
                    or_(ScheduledJob.claimed_at.is_(None), ScheduledJob.claimed_at < now - self.claim),
                )
                .values(claimed_at=now)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        if claimed.rowcount == 0:  # type: ignore[attr-defined]  # an UPDATE's result has rowcount; the stubs type it as Result
            # Moved, sent, or being handed off by another: not this one's to send.
            raise ScheduledTaskCancelledError()

    async def post_send(self, scheduled: ScheduledTask) -> None:
        job_id, run_at = _job_of(scheduled)
        async with self.runtime.db.system_session() as session:
            # Matching run_at as well: a job moved meanwhile stays pending for its new time.
            await session.execute(
                update(ScheduledJob)
                .where(
                    ScheduledJob.id == job_id, ScheduledJob.run_at == run_at, ScheduledJob.sent_at.is_(None)
                )
                .values(sent_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        log.debug("timed job sent", task=scheduled.task_name, run_at=run_at.isoformat())


def build_scheduler(broker: AsyncBroker) -> TaskiqScheduler:
    return TaskiqScheduler(
        broker=broker, sources=[LabelScheduleSource(broker), DatabaseScheduleSource(broker.state.runtime)]
    )


@task("hub.deliver_events")
async def deliver_events(entry_ids: list[str], claimed: bool = False) -> int:
    from hub.events import deliver

    return await deliver([uuid.UUID(i) for i in entry_ids], claimed=claimed)


@task("hub.sweep_events", every_seconds=10)
async def sweep_events() -> int:
    from hub.events import sweep

    return await sweep()


@task("hub.purge_expired", every_seconds=3600)
async def purge_expired() -> None:
    """Drop what can no longer matter: expired revocations and reset links, old sent jobs."""
    from hub.runtime import current

    now = utcnow()
    async with current().db.system_session() as session:
        await session.execute(delete(RevokedToken).where(RevokedToken.expires_at < now))
        await session.execute(delete(PasswordReset).where(PasswordReset.expires_at < now))
        await session.execute(delete(ScheduledJob).where(ScheduledJob.sent_at < now - timedelta(days=7)))
        await session.commit()
