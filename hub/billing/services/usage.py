"""How much of each limit of its plan an organization uses: what it holds now (users, numbers,
channels) and what it used this month (the usage counters)."""

from __future__ import annotations

from sqlalchemy import func, select

from hub.audience import writers_of
from hub.billing.events import UsageUpdated
from hub.billing.hooks import held_counts
from hub.db import HubAsyncSession, utcnow
from hub.models import User
from hub.realtime import push

# The monthly limits and the usage counter each reads.
MONTHLY_COUNTERS = {
    "messages_per_month": "messages_sent",
    "campaign_recipients_per_month": "campaign_recipients",
    "ai_credits_per_month": "ai_credits",
}


async def usage_now(session: HubAsyncSession) -> dict[str, int | None]:
    """Per limit, what the organization uses now (None: not counted on this installation)."""
    # Imported here: hub.services (the team's invitations) asks billing for room, so billing
    # cannot import hub.services while it loads.
    from hub.services.usage import usage_month, usage_of

    month = await usage_of(session, usage_month(utcnow()))
    used: dict[str, int | None] = {
        limit: month.get(counter, 0) for limit, counter in MONTHLY_COUNTERS.items()
    }
    used["agents"] = int(
        await session.scalar(select(func.count()).select_from(User).where(User.is_active.is_(True))) or 0
    )
    for limit in ("whatsapp_profiles", "api_channels"):
        count = held_counts.get(limit)
        used[limit] = await count(session) if count is not None else None
    used["storage_mb"] = None  # counted with the media store's accounting, not yet kept
    return used


MARKS = (80, 100)  # percent of a limit at which admins are told


async def note_count(session: HubAsyncSession, counter: str, before: int, after: int) -> None:
    """A monthly counter moved: when it crossed 80% or 100% of the plan's limit, the admins are
    told (`usageUpdated`, after the commit), once per mark."""
    from hub.billing.services.limits import billing_on, plan_in_force  # limits reads usage
    from hub.billing.services.plans import limit_of

    limit = next((name for name, kept in MONTHLY_COUNTERS.items() if kept == counter), None)
    if limit is None or not billing_on():
        return
    plan = await plan_in_force(session)
    value = limit_of(plan, limit) if plan is not None else None
    if not value:
        return
    crossed = [mark for mark in MARKS if before * 100 < mark * value <= after * 100]
    if crossed:
        push(
            session,
            UsageUpdated(limit=limit, used=after, value=value, percent=crossed[-1]),
            writers_of("billing"),  # the admins
        )
