"""Database engine, sessions and tenant isolation.

Every session is either a tenant session (bound to one organization) or a system session
(explicitly cross-organization: login look-ups, the outbox drain, the scheduler). In a tenant
session every ORM statement on a tenant table is filtered by the organization automatically,
and on PostgreSQL each transaction also switches to a role without BYPASSRLS and sets
`app.organization_id`, so row-level security holds even for raw SQL. A session that is neither
refuses to run ORM statements: forgetting the tenant fails loudly instead of leaking.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import structlog
from sqlalchemy import (
    DateTime,
    ForeignKey,
    MetaData,
    Table,
    Uuid,
    any_,
    bindparam,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Mapper,
    ORMExecuteState,
    Session,
    SessionTransaction,
    mapped_column,
    with_loader_criteria,
)
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.types import TypeDecorator

from hub.config import Settings

log = structlog.get_logger(__name__)

ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def utcnow() -> datetime:
    return datetime.now(UTC)


_SEQUENCE_BITS = 74  # the 12 + 62 bits after the millisecond, version and variant
_last_id = (0, 0)  # (milliseconds, sequence) of the last id made in this process
_id_lock = threading.Lock()


def new_id() -> uuid.UUID:
    """A UUIDv7: time-ordered, so primary keys double as a stable, index-friendly sort order.

    Within one process ids only grow: in the same millisecond the random part counts up from the
    previous id (RFC 9562, method 2), so rows made together sort in the order they were made.
    """
    global _last_id
    millis = time.time_ns() // 1_000_000
    with _id_lock:
        last_millis, last_sequence = _last_id
        if millis <= last_millis and last_sequence + 1 < 1 << _SEQUENCE_BITS:
            millis, sequence = last_millis, last_sequence + 1
        else:
            millis = max(millis, last_millis + (millis <= last_millis))
            sequence = int.from_bytes(os.urandom(10), "big") >> (80 - _SEQUENCE_BITS + 1)  # room to count
        _last_id = (millis, sequence)
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= (sequence >> 62) << 64  # 12 bits
    value |= 0b10 << 62  # variant
    value |= sequence & ((1 << 62) - 1)
    return uuid.UUID(int=value)


def id_at(moment: datetime) -> uuid.UUID:
    """The smallest id `new_id` makes at a moment: ids below it were made before it."""
    millis = int(moment.timestamp() * 1000)
    return uuid.UUID(int=((millis & ((1 << 48) - 1)) << 80) | (0x7 << 76) | (0b10 << 62))


def moment_of(id_: uuid.UUID) -> datetime:
    """When `new_id` made this id, to the millisecond."""
    return datetime.fromtimestamp((id_.int >> 80) / 1000, UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases (SQLite keeps no offset of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), uuid.UUID: Uuid()}  # noqa: RUF012

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TenantMixin:
    """Rows that belong to one organization; filtered and guarded automatically."""

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )


class TenancyError(RuntimeError):
    """A statement ran without a tenant, or touched another organization's row."""


class HubSession(Session):
    """The synchronous session behind HubAsyncSession; the tenancy events listen on it."""


class HubAsyncSession(AsyncSession):
    """An async session whose `after_commit` callbacks run once the transaction is durable."""

    @property
    def organization_id(self) -> uuid.UUID | None:
        return self.info.get("organization_id")

    def after_commit(self, callback: Callable[[], Awaitable[None]]) -> None:
        self.info.setdefault("after_commit", []).append(callback)

    def on_rollback(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Undo something outside the database (a file written, say) if this transaction never commits."""
        self.info.setdefault("on_rollback", []).append(callback)

    async def commit(self) -> None:
        await super().commit()
        self.info.pop("on_rollback", None)
        callbacks = self.info.pop("after_commit", [])
        for callback in callbacks:
            try:
                await callback()
            except Exception:
                # The change is committed; a failed notification must not turn it into an error.
                log.exception("after_commit callback failed", callback=getattr(callback, "__qualname__", ""))

    async def rollback(self) -> None:
        self.info.pop("after_commit", None)
        await super().rollback()
        await self._undo()

    async def close(self) -> None:
        self.info.pop("after_commit", None)
        await super().close()
        await self._undo()

    async def _undo(self) -> None:
        for callback in self.info.pop("on_rollback", []):
            try:
                await callback()
            except Exception:
                log.exception("on_rollback callback failed", callback=getattr(callback, "__qualname__", ""))


def _tenant_of(session: Session) -> uuid.UUID | None:
    org = session.info.get("organization_id")
    if org is None and not session.info.get("system"):
        raise TenancyError(
            "database session has no organization; use Database.session(org) or system_session()"
        )
    return org


@event.listens_for(HubSession, "do_orm_execute")
def _scope_statement(state: ORMExecuteState) -> None:
    if state.is_column_load or state.is_relationship_load:
        return  # the criteria of the parent statement already apply to these loads
    if not (state.is_select or state.is_update or state.is_delete):
        return
    org = _tenant_of(state.session)
    if org is None:
        return
    # Made once per session (one organization): building them is a fair part of a small query.
    options = state.session.info.get("tenant_options")
    if options is None:
        from hub.models import Organization  # the tenant root is scoped by its own id

        options = state.session.info["tenant_options"] = (
            with_loader_criteria(TenantMixin, lambda cls: cls.organization_id == org, include_aliases=True),
            with_loader_criteria(Organization, lambda cls: cls.id == org, include_aliases=True),
        )
    state.statement = state.statement.options(*options)


@event.listens_for(HubSession, "before_flush")
def _stamp_tenant(session: Session, _flush_context: Any, _instances: Any) -> None:
    org = _tenant_of(session)
    for obj in list(session.new) + list(session.dirty):
        if not isinstance(obj, TenantMixin):
            continue
        if obj.organization_id is None:
            if org is None:
                raise TenancyError(
                    f"{type(obj).__name__} written in a system session without organization_id"
                )
            obj.organization_id = org
        elif org is not None and obj.organization_id != org:
            raise TenancyError(f"{type(obj).__name__} belongs to another organization")


@event.listens_for(HubSession, "after_begin")
def _enter_role(session: Session, _transaction: SessionTransaction, connection: Connection) -> None:
    role = session.info.get("db_role")
    if role is None:
        return
    org = session.info.get("organization_id")
    if org is None:
        # A system session: the role whose policy sees every organization. The login itself can
        # do nothing (it inherits neither role), so leaving a role behind gains nothing.
        connection.execute(text("SELECT set_config('role', :role, true)"), {"role": role})
        return
    # Row-level security: the rest of this transaction runs as a role that cannot bypass it, and
    # sees one organization. Both settings in one round trip (set_config(..., true) is SET LOCAL).
    connection.execute(
        text("SELECT set_config('role', :role, true), set_config('app.organization_id', :org, true)"),
        {"role": role, "org": str(org)},
    )


class Database:
    def __init__(self, settings: Settings) -> None:
        for name, role in (
            ("HUB_DB_APP_ROLE", settings.db_app_role),
            ("HUB_DB_SYSTEM_ROLE", settings.db_system_role),
        ):
            if not ROLE_NAME.match(role):
                raise ValueError(f"{name} must be a plain lower-case identifier")
        self.settings = settings
        self.is_postgres = settings.is_postgres
        self.engine: AsyncEngine = create_engine(settings)
        self._sessions = async_sessionmaker(
            self.engine, class_=HubAsyncSession, sync_session_class=HubSession, expire_on_commit=False
        )

    def session(self, organization_id: uuid.UUID) -> HubAsyncSession:
        """A session that sees and writes only this organization's rows."""
        return self._sessions(
            info={
                "organization_id": organization_id,
                "db_role": self.settings.db_app_role if self.is_postgres else None,
            }
        )

    def system_session(self) -> HubAsyncSession:
        """A cross-organization session, for the few paths that must look across tenants."""
        return self._sessions(
            info={"system": True, "db_role": self.settings.db_system_role if self.is_postgres else None}
        )

    @property
    def queue_wait(self) -> float:
        """How long a checkout asked for now would wait for a connection (0: one is free)."""
        pool = self.engine.pool
        return pool.expected_wait if isinstance(pool, TimedPool) else 0.0

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


# Arabic and other letters stored as themselves, so a search of JSON text finds them. One encoder
# for every value: json.dumps with options builds a new one per call.
_json_text = json.JSONEncoder(ensure_ascii=False).encode


class TimedPool(AsyncAdaptedQueuePool):
    """The engine's pool, knowing how long work queued for a connection will wait: the oldest
    checkout still waiting, and what the checkouts waiting now will take at the pace connections
    are held lately. A process whose work queues for the database is behind, whatever the work
    is (the inbound gate reads it). What waits now, not the worst wait of a while ago: a gate that
    kept refusing after the queue had drained would leave the database idle while senders are
    turned away, and one that looked only at the oldest would let a burst queue up behind it."""

    HELD_WEIGHT = 0.05  # of each new checkout in the running mean of how long one is held

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._waiting: dict[object, float] = {}  # in the order they began to wait
        self._taken: dict[int, float] = {}  # connection record -> when it was checked out
        self.held = 0.0  # how long a checkout keeps its connection, lately (seconds)

    @property
    def expected_wait(self) -> float:
        """How long a checkout asked for now would wait (0 when a connection is free)."""
        if not self._waiting:
            return 0.0
        oldest = time.monotonic() - next(iter(self._waiting.values()))
        connections = max(1, self.size() + max(0, self._max_overflow))
        ahead = len(self._waiting) * self.held / connections
        return max(oldest, ahead)

    def _do_get(self) -> Any:
        key = object()
        self._waiting[key] = time.monotonic()
        try:
            record = super()._do_get()
        finally:
            del self._waiting[key]
        self._taken[id(record)] = time.monotonic()
        return record

    def _do_return_conn(self, record: Any) -> None:
        taken = self._taken.pop(id(record), None)
        if taken is not None:
            self.held += (time.monotonic() - taken - self.held) * self.HELD_WEIGHT
        super()._do_return_conn(record)


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.is_postgres:
        # No pre-ping: it costs a round trip per checkout; a dropped connection is invalidated on
        # its first error, and recycling retires idle ones before a server or proxy times them out.
        return create_async_engine(
            settings.database_url,
            poolclass=TimedPool,
            pool_size=10,
            max_overflow=20,
            pool_recycle=1800,
            json_serializer=_json_text,
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # One connection, shared in turn: SQLite lets one writer in at a time, and writers that collide
    # on several connections wait in SQLite's sleeping busy handler, which grows to 100 ms a try.
    # Queueing for the one connection in the event loop is fair and costs nothing while it waits.
    # The price: code must not hold a session while it waits on something slow (WhatsApp, a
    # download); it commits first, and what runs after a commit has let go of the connection.
    engine = create_async_engine(
        settings.database_url,
        poolclass=TimedPool,
        connect_args={"timeout": 30},
        pool_size=1,
        max_overflow=0,
        pool_timeout=60,
        json_serializer=_json_text,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


R = TypeVar("R")


async def organization_row(session: AsyncSession, model: type[R], **defaults: Any) -> R:
    """The organization's one row of a settings table (unique by organization), made with the
    defaults on first use; one made at the same moment by another request is taken instead."""
    found = await session.scalar(select(model))
    if found is not None:
        return found
    try:
        async with session.begin_nested():
            made = model(**defaults)
            session.add(made)
            await session.flush()
        return made
    except IntegrityError:
        found = await session.scalar(select(model))
        assert found is not None
        return found


def table_of(model: type[Base]) -> Table:
    """A model's table, for the plain statements of the busiest paths (typed as the Table it is)."""
    return cast(Table, model.__table__)


class _Columns(dict[type, list[tuple[Any, Any]]]):
    """Per mapped class, its (attribute, column) pairs; worked out once, on first use."""

    def __missing__(self, cls: type) -> list[tuple[Any, Any]]:
        mapper: Mapper[Any] = inspect(cls)
        found = self[cls] = [(attribute, attribute.columns[0]) for attribute in mapper.column_attrs]
        return found


COLUMNS = _Columns()


def row_values(row: Base) -> dict[str, Any]:
    """The column values of a new object, for a plain INSERT of it: what is set, else the model's
    plain default (which otherwise applies only in a flush), so a column added later with a
    default needs no change here."""
    values = {}
    for attribute, column in COLUMNS[type(row)]:
        value = getattr(row, attribute.key)
        if value is None and column.default is not None and column.default.is_scalar:
            value = column.default.arg
        values[column.name] = value
    return values


def on_postgres(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"


def insert_for(session: AsyncSession, table: Any) -> Any:
    """An INSERT of the session's database, so that `on_conflict_do_nothing/update` are there."""
    return (postgresql_insert if on_postgres(session) else sqlite_insert)(table)


def one_of(session: AsyncSession, column: Any, values: Any) -> Any:
    """`column IN (values)` whose SQL is the same for any number of values on PostgreSQL
    (`= ANY(:array)`): batches of every size share one prepared, cached statement instead of
    making a new one for each length. SQLite gets the plain list."""
    values = list(values)
    if on_postgres(session):
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
    return column.in_(values)
