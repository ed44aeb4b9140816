"""Typed domain events, published after commit and handled at least once through an outbox.

`publish(session, event)` writes one outbox row per registered handler in the caller's
transaction. Once that transaction commits, the rows are handed to a task; a row is deleted only
after its handler succeeded, so a crash anywhere leaves it for the periodic sweep. Handlers may
therefore see an event more than once and must be idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any, ClassVar, TypeVar

import msgspec
import structlog
from sqlalchemy import delete, insert, select, update

from hub.db import HubAsyncSession, new_id, table_of, utcnow
from hub.models import OutboxEntry

log = structlog.get_logger(__name__)


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """Base of every event. Payloads carry ids and a few small fields, never whole objects."""

    name: ClassVar[str]
    organization_id: uuid.UUID


E = TypeVar("E", bound=Event)
Handler = Callable[[Any], Awaitable[None]]

_event_types: dict[str, type[Event]] = {}
_handlers: dict[str, dict[str, Handler]] = {}
_listeners: list[Callable[[Event], None]] = []
_hints: dict[str, list[Callable[[Any], Awaitable[None]]]] = {}
_running_hints: set[asyncio.Task[None]] = set()
# Hints run for the events one runtime committed within HINT_BATCH_SECONDS, at most
# HINT_BATCH_MOST at once: one transaction serves many messages on a busy inbox.
HINT_BATCH_SECONDS = 0.05
HINT_BATCH_MOST = 200
_hint_batches: dict[tuple[int, str], list[Event]] = {}
_INSERT_ENTRIES = insert(table_of(OutboxEntry))

MAX_BACKOFF_SECONDS = 3600


def event_type(cls: type[E]) -> type[E]:
    """Register an event class under its `name`, so stored payloads can be decoded again."""
    existing = _event_types.get(cls.name)
    if existing is not None and existing is not cls:
        raise ValueError(f"event name {cls.name!r} is already taken by {existing.__qualname__}")
    _event_types[cls.name] = cls
    return cls


def handles(
    cls: type[E], *, name: str | None = None
) -> Callable[[Callable[[E], Awaitable[None]]], Callable[[E], Awaitable[None]]]:
    """Register an idempotent handler; `name` is its stable identity in the outbox."""

    def register(function: Callable[[E], Awaitable[None]]) -> Callable[[E], Awaitable[None]]:
        handler_name = name or f"{function.__module__}.{function.__qualname__}"
        _handlers.setdefault(cls.name, {})[handler_name] = function
        return function

    return register


HintFunction = Callable[[list[E]], Awaitable[None]]


def hints(cls: type[E]) -> Callable[[HintFunction[E]], HintFunction[E]]:
    """Register work to start in this process once events' transactions commit, without an
    outbox row: for the busiest events, where what follows may be lost with the process (a
    suggestion shown to an agent) and a durable handler's writes would cost every event. The
    function gets the events committed in a short while (`HINT_BATCH_SECONDS`), in order."""

    def register(function: HintFunction[E]) -> HintFunction[E]:
        _hints.setdefault(cls.name, []).append(function)
        return function

    return register


def by_organization(batch: list[E]) -> dict[uuid.UUID, list[E]]:
    """A batch's events by organization, each in order."""
    found: dict[uuid.UUID, list[E]] = {}
    for event in batch:
        found.setdefault(event.organization_id, []).append(event)
    return found


def _hint(event: Event) -> None:
    from hub.runtime import current

    if event.name not in _hints:
        return
    key = (id(current()), event.name)  # a process may hold several hubs: never mix their events
    pending = _hint_batches.get(key)
    if pending is None:
        pending = _hint_batches[key] = []
        # The timer runs in this context, so the hints run with this hub's runtime bound.
        asyncio.get_running_loop().call_later(HINT_BATCH_SECONDS, _flush_hints, key)
    pending.append(event)
    if len(pending) >= HINT_BATCH_MOST:
        _flush_hints(key)


def _flush_hints(key: tuple[int, str]) -> None:
    batch = _hint_batches.pop(key, None)
    if not batch:
        return
    for function in _hints.get(batch[0].name, ()):
        task = asyncio.create_task(_run_hint(function, batch))
        _running_hints.add(task)
        task.add_done_callback(_running_hints.discard)


async def _run_hint(function: Callable[[Any], Awaitable[None]], batch: list[Event]) -> None:
    try:
        await function(batch)
    except Exception as error:
        log.warning("event hint failed", event_name=batch[0].name, events=len(batch), error=repr(error)[:300])


async def publish(session: HubAsyncSession, event: Event) -> None:
    """Record the event in the session's transaction; it goes out only if that transaction commits."""
    if event.name not in _event_types:
        raise ValueError(f"{type(event).__qualname__} is not registered with @event_type")
    from hub.runtime import current

    payload = msgspec.to_builtins(event)
    claim = timedelta(seconds=current().settings.event_claim_seconds)
    now = utcnow()
    # The rows start claimed by this process: the hand-off below runs them at once, and if this
    # process dies first the claim lapses and the sweep picks them up.
    ids = [new_id() for _ in _handlers.get(event.name, {})]
    if ids:
        # One plain INSERT in the session's transaction (no unit of work: every inbound message
        # publishes, and the flush machinery would cost more than the rows).
        await (await session.connection()).execute(
            _INSERT_ENTRIES,
            [
                {
                    "id": entry_id,
                    "organization_id": event.organization_id,
                    "event_name": event.name,
                    "handler": handler_name,
                    "payload": payload,
                    "attempts": 0,
                    "available_at": now + claim,
                    "created_at": now,
                    "updated_at": now,
                }
                for entry_id, handler_name in zip(ids, _handlers[event.name], strict=True)
            ],
        )

    async def hand_off() -> None:
        for listener in list(_listeners):
            listener(event)
        _hint(event)
        if ids:
            from hub.tasks import kick

            await kick("hub.deliver_events", entry_ids=[str(i) for i in ids], claimed=True)

    session.after_commit(hand_off)


async def deliver(entry_ids: list[uuid.UUID], *, claimed: bool = False) -> int:
    """Run the handlers of these outbox rows; returns how many succeeded."""
    from hub.runtime import current

    db = current().db
    claim_for = timedelta(seconds=current().settings.event_claim_seconds)
    delivered = 0
    for entry_id in entry_ids:
        async with db.system_session() as session:
            now = utcnow()
            claim = (
                update(OutboxEntry)
                .where(OutboxEntry.id == entry_id)
                .values(available_at=now + claim_for, attempts=OutboxEntry.attempts + 1)
                .returning(
                    OutboxEntry.event_name, OutboxEntry.handler, OutboxEntry.payload, OutboxEntry.attempts
                )
                .execution_options(synchronize_session=False)
            )
            if not claimed:
                claim = claim.where(OutboxEntry.available_at <= now)
            row = (await session.execute(claim)).first()
            await session.commit()
        if row is None:
            continue  # handled already, or claimed by another deliverer
        event_name, handler_name, payload, attempts = row
        handler = _handlers.get(event_name, {}).get(handler_name)
        event_cls = _event_types.get(event_name)
        try:
            if handler is None or event_cls is None:
                raise LookupError(f"no handler {handler_name!r} for {event_name!r} in this process")
            await handler(msgspec.convert(payload, event_cls))
        except Exception as error:
            backoff = min(MAX_BACKOFF_SECONDS, 2 ** min(attempts, 12))
            log.warning(
                "event handler failed",
                event_name=event_name,
                handler=handler_name,
                attempts=attempts,
                retry_in=backoff,
                error=repr(error)[:300],
            )
            async with db.system_session() as session:
                await session.execute(
                    update(OutboxEntry)
                    .where(OutboxEntry.id == entry_id)
                    .values(available_at=utcnow() + timedelta(seconds=backoff), last_error=repr(error)[:2000])
                    .execution_options(synchronize_session=False)
                )
                await session.commit()
            continue
        async with db.system_session() as session:
            await session.execute(
                delete(OutboxEntry)
                .where(OutboxEntry.id == entry_id)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        delivered += 1
    return delivered


async def sweep(limit: int = 500) -> int:
    """Deliver rows whose claim lapsed: events from a process that died, and retries that are due."""
    from hub.runtime import current

    async with current().db.system_session() as session:
        ids = list(
            await session.scalars(
                select(OutboxEntry.id)
                .where(OutboxEntry.available_at <= utcnow())
                .order_by(OutboxEntry.id)
                .limit(limit)
            )
        )
    return await deliver(ids) if ids else 0


@contextlib.contextmanager
def capture_events() -> Iterator[list[Event]]:
    """Collect the events published (and committed) inside the block, in order; for tests."""
    captured: list[Event] = []
    _listeners.append(captured.append)
    try:
        yield captured
    finally:
        _listeners.remove(captured.append)


# The kernel's own events: what other packages may react to.


@event_type
class OrganizationRegistered(Event, frozen=True, kw_only=True):
    name: ClassVar[str] = "hub.organization_registered"
    admin_id: uuid.UUID


@event_type
class UserJoined(Event, frozen=True, kw_only=True):
    name: ClassVar[str] = "hub.user_joined"
    user_id: uuid.UUID
    role: str


@event_type
class UserRoleChanged(Event, frozen=True, kw_only=True):
    name: ClassVar[str] = "hub.user_role_changed"
    user_id: uuid.UUID
    old_role: str
    new_role: str


@event_type
class UserRemoved(Event, frozen=True, kw_only=True):
    name: ClassVar[str] = "hub.user_removed"
    user_id: uuid.UUID


@event_type
class PasswordResetRequested(Event, frozen=True, kw_only=True):
    name: ClassVar[str] = "hub.password_reset_requested"
    user_id: uuid.UUID
    base_url: str


@event_type
class ModuleSettingsChanged(Event, frozen=True, kw_only=True):
    name: ClassVar[str] = "hub.module_settings_changed"
    modules: dict[str, bool]
