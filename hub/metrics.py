"""What operators watch: Prometheus metrics at `/metrics`, behind `HUB_METRICS_TOKEN`.

Each process counts what it does (posts, emits, sends). Where several processes of one machine
run (`hub serve` behind a balancer, `hub worker`, `hub scheduler`), they share a directory of
counter files (prometheus-client's multiprocess mode, `PROMETHEUS_MULTIPROC_DIR`, which the CLI
sets to `HUB_METRICS_DIR` before this module is imported: prometheus-client picks its mode at
import), so any web process answers for all of them.
What lives in the shared stores (the outbox, the task queue) is read when scraped.
"""

from __future__ import annotations

import asyncio
import collections
import os
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client import REGISTRY as PROCESS_REGISTRY
from sqlalchemy import func, select

from hub.db import moment_of, utcnow

if TYPE_CHECKING:
    from hub.runtime import Runtime

log = structlog.get_logger(__name__)

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

INBOUND_POSTS = Counter(
    "hub_inbound_posts_total",
    "Posts channels made to the hub, by kind (message, receipt) and result (accepted, refused: "
    "the process was busy, throttled: too many failures from one address, rejected: unknown "
    "channel or bad signature, invalid, timeout)",
    ["kind", "result"],
)
INBOUND_REFUSALS = Counter(
    "hub_inbound_refusals_total",
    "Channel posts refused because the process was past a bound, by the bound: in_progress "
    "(HUB_INBOUND_MAX_PENDING), loop_lag, loop_busy, waited (the post itself), database_wait, fanout_backlog",
    ["reason"],
)
INBOUND_TO_EMIT = Histogram(
    "hub_inbound_to_emit_seconds",
    "From an inbound message's arrival to its newMessage going out to the sockets (or to the "
    "other web processes)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
LOOP_LAG = Gauge(
    "hub_event_loop_lag_seconds",
    "How late the event loop runs callbacks: the worst of the last half second",
    multiprocess_mode="livemax",
)
LOOP_BUSY = Gauge(
    "hub_event_loop_busy_ratio",
    "Share of the last quarter second the event loop's thread spent working",
    multiprocess_mode="livemax",
)
INBOUND_WINDOW = Gauge(
    "hub_inbound_window",
    "Channel posts this web process may have in progress at once now (learnt from how long they take)",
    multiprocess_mode="liveall",
)
SOCKETS = Gauge("hub_sockets", "Sockets connected to this web process", multiprocess_mode="liveall")
FANOUT_BACKLOG = Gauge(
    "hub_socket_fanout_backlog",
    "Socket pushes waiting for their emit",
    multiprocess_mode="livesum",
)
SLOW_SOCKETS = Counter("hub_sockets_closed_slow_total", "Sockets closed because their client stopped reading")
CAMPAIGN_SENDS = Counter(
    "hub_campaign_sends_total",
    "Campaign messages handed to a channel, by result (sent, failed, retry: not sent and waiting "
    "for its next slot)",
    ["result"],
)
PACING_WAITS = Histogram(
    "hub_campaign_pacing_wait_seconds",
    "How long a channel's campaign sending waited for its next pacing slot",
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
WHATSAPP_SESSIONS = Gauge(
    "hub_whatsapp_sessions",
    "WhatsApp profiles this process holds, by state",
    ["state"],
    multiprocess_mode="livesum",
)
WHATSAPP_RECONNECTS = Counter("hub_whatsapp_reconnects_total", "WhatsApp connections lost and tried again")
DATABASE_CONNECTIONS = Gauge(
    "hub_database_connections",
    "This process's database pool: connections in use and the pool's size",
    ["state"],
    multiprocess_mode="liveall",
)

# When the inbound message the current work stems from arrived (time.monotonic), for
# INBOUND_TO_EMIT; set where a message enters, read where its newMessage is pushed.
arrived: ContextVar[float | None] = ContextVar("hub_inbound_arrived", default=None)

# What other packages measure when scraped (the WhatsApp sessions this process holds, say).
_refreshers: list[Callable[[Runtime], None]] = []


def on_refresh(refresher: Callable[[Runtime], None]) -> None:
    if refresher not in _refreshers:
        _refreshers.append(refresher)


def process_ended() -> None:
    """This process's live gauges leave the sums (its counters stay counted)."""
    if os.environ.get(MULTIPROCESS_ENV):
        multiprocess.mark_process_dead(os.getpid())


async def keep_fresh(runtime: Runtime, every: float = 5.0) -> None:
    """Keep this process's gauges current for the scrapes other processes answer."""
    while True:
        refresh(runtime)
        await asyncio.sleep(every)


def refresh(runtime: Runtime) -> None:
    """Set this process's gauges from what it holds now."""
    LOOP_LAG.set(runtime.loop_lag.seconds)
    LOOP_BUSY.set(runtime.loop_lag.busy)
    INBOUND_WINDOW.set(runtime.inbound_gate.window)
    pusher = runtime.pusher
    if pusher is not None:
        FANOUT_BACKLOG.set(pusher.fanout.backlog)
        if pusher.server is not None:
            SOCKETS.set(pusher.connected)
    pool = runtime.db.engine.pool
    size = getattr(pool, "size", lambda: 1)()
    DATABASE_CONNECTIONS.labels("in_use").set(getattr(pool, "checkedout", lambda: 0)())
    DATABASE_CONNECTIONS.labels("size").set(size)
    for refresher in _refreshers:
        refresher(runtime)


async def _shared(runtime: Runtime) -> CollectorRegistry:
    """What the shared stores hold now: the outbox's backlog and its oldest entry's age, and the
    task queue's depth (waiting and taken but not yet done)."""
    from hub.models import OutboxEntry

    registry = CollectorRegistry()
    backlog = Gauge("hub_outbox_backlog", "Events waiting for their handlers", registry=registry)
    oldest = Gauge("hub_outbox_oldest_seconds", "Age of the oldest waiting event", registry=registry)
    async with runtime.db.system_session() as session:
        count = await session.scalar(select(func.count()).select_from(OutboxEntry))
        first = await session.scalar(select(OutboxEntry.id).order_by(OutboxEntry.id).limit(1))
    backlog.set(count or 0)
    oldest.set((utcnow() - moment_of(first)).total_seconds() if first is not None else 0)
    group_name = getattr(runtime.broker, "consumer_group_name", None)  # a Redis stream's consumers
    if runtime.redis is not None and group_name is not None:
        depth = Gauge("hub_task_queue_depth", "Tasks waiting or running", ["state"], registry=registry)
        waiting = running = 0
        for group in await runtime.redis.xinfo_groups(getattr(runtime.broker, "queue_name", "")):
            name = group["name"]
            if (name.decode() if isinstance(name, bytes) else name) == group_name:
                waiting, running = group.get("lag") or 0, group["pending"]
        depth.labels("waiting").set(waiting)
        depth.labels("running").set(running)
    return registry


async def exposition(runtime: Runtime) -> tuple[bytes, str]:
    """The text a scrape gets: every process's counters and gauges, then the shared stores."""
    refresh(runtime)
    if os.environ.get(MULTIPROCESS_ENV):
        processes = CollectorRegistry()
        multiprocess.MultiProcessCollector(processes)
    else:
        processes = PROCESS_REGISTRY
    return generate_latest(processes) + generate_latest(await _shared(runtime)), CONTENT_TYPE_LATEST


REFUSALS_LOGGED_EVERY = 10.0  # seconds: an overloaded process refuses many, and says so once
_refusals: collections.Counter[str] = collections.Counter()
_refusals_logged_at = 0.0


def inbound_refused(reason: str) -> None:
    """Count a refused post by what was past its bound, and log the counts now and then."""
    global _refusals_logged_at
    INBOUND_REFUSALS.labels(reason).inc()
    _refusals[reason] += 1
    now = time.monotonic()
    if now - _refusals_logged_at >= REFUSALS_LOGGED_EVERY:
        log.warning("channel posts refused: this process is past a bound", **dict(_refusals))
        _refusals.clear()
        _refusals_logged_at = now
