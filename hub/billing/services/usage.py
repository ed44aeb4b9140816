"""How much of each limit of its plan an organization uses: what it holds now (users, numbers,
channels) and what it used this month (the usage counters)."""

from __future__ import annotations

import math

from sqlalchemy import func, select

from hub.audience import writers_of
from hub.billing.events import UsageUpdated
from hub.billing.hooks import held_counts
from hub.db import HubAsyncSession, utcnow
from hub.models import Invitation, Media, UsageCounter, User
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
    for limit in HELD:
        used[limit] = await used_of(session, limit)
    return used


HELD = ("agents", "whatsapp_profiles", "api_channels", "storage_mb")


async def used_of(session: HubAsyncSession, limit: str) -> int | None:
    """What the organization uses now of one limit (None: not counted on this installation):
    a limit checked on a busy path reads only its own figure."""
    from hub.services.usage import usage_month

    counter = MONTHLY_COUNTERS.get(limit)
    if counter is not None:
        quantity = await session.scalar(
            select(UsageCounter.quantity).where(
                UsageCounter.month == usage_month(utcnow()), UsageCounter.metric == counter
            )
        )
        return int(quantity or 0)
    if limit == "agents":
        return await seats_taken(session)
    if limit == "storage_mb":
        return math.ceil(await stored_bytes(session) / MB)
    count = held_counts.get(limit)
    return await count(session) if count is not None else None


MB = 1024 * 1024


async def seats_taken(session: HubAsyncSession) -> int:
    """Active users and the invitations still open: an invitation holds its seat until it is
    accepted or expires, so inviting cannot outrun the plan."""
    users = await session.scalar(select(func.count()).select_from(User).where(User.is_active.is_(True)))
    invited = await session.scalar(
        select(func.count())
        .select_from(Invitation)
        .where(Invitation.accepted_at.is_(None), Invitation.expires_at > utcnow())
    )
    return int(users or 0) + int(invited or 0)


async def stored_bytes(session: HubAsyncSession) -> int:
    """Every file the organization keeps, received or sent."""
    return int(await session.scalar(select(func.coalesce(func.sum(Media.size), 0))) or 0)


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
    tell_if_crossed(session, limit, value, before, after)


def tell_if_crossed(session: HubAsyncSession, limit: str, value: int | None, before: int, after: int) -> None:
    """Admins hear (`usageUpdated`, after the commit) when going from `before` to `after` crossed
    80% or 100% of the limit's value."""
    if not value:
        return
    crossed = [mark for mark in MARKS if before * 100 < mark * value <= after * 100]
    if crossed:
        push(
            session,
            UsageUpdated(limit=limit, used=after, value=value, percent=crossed[-1]),
            writers_of("billing"),  # the admins
        )
