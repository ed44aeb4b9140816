"""Usage counted per organization and calendar month (UTC), by metric: the figures billing reads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import structlog
from sqlalchemy import select

from hub.db import HubAsyncSession, insert_for, new_id, table_of, utcnow
from hub.models import UsageCounter

log = structlog.get_logger(__name__)


# Told of every count, in its transaction, with the figure before and after (billing's marks).
UsageListener = Callable[[HubAsyncSession, str, int, int], Awaitable[None]]
usage_listeners: list[UsageListener] = []


def usage_month(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m")


async def count_usage(session: HubAsyncSession, metric: str, quantity: int = 1) -> None:
    """Add to this month's figure in the caller's transaction: one upsert, so senders in every
    process add up without reading first."""
    if quantity <= 0:
        return
    now = utcnow()
    table = table_of(UsageCounter)
    statement = insert_for(session, table).values(
        id=new_id(),
        organization_id=session.organization_id,
        month=usage_month(now),
        metric=metric,
        quantity=quantity,
        created_at=now,
        updated_at=now,
    )
    counted = await session.scalar(
        statement.on_conflict_do_update(
            index_elements=["organization_id", "month", "metric"],
            set_={"quantity": table.c.quantity + statement.excluded.quantity, "updated_at": now},
        ).returning(table.c.quantity)
    )
    for listener in usage_listeners:
        await listener(session, metric, int(counted or 0) - quantity, int(counted or 0))


async def usage_of(session: HubAsyncSession, month: str) -> dict[str, int]:
    rows = await session.execute(
        select(UsageCounter.metric, UsageCounter.quantity).where(UsageCounter.month == month)
    )
    return {metric: int(quantity) for metric, quantity in rows}
