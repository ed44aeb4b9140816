"""How much of each limit of its plan an organization uses: what it holds now (users, numbers,
channels) and what it used this month (the usage counters)."""

from __future__ import annotations

from sqlalchemy import func, select

from hub.billing.hooks import held_counts
from hub.db import HubAsyncSession, utcnow
from hub.models import User

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
