"""Billing's timed work: a downgrade applied when the period paid for ends, and a daily look for
cards about to expire."""

from __future__ import annotations

import uuid

from hub.billing import services
from hub.billing.services.notices import warn_expiring_cards
from hub.runtime import current
from hub.tasks import task


@task("billing.apply_plan_change")
async def apply_plan_change(organization_id: str) -> None:
    await services.apply_pending_change(current(), uuid.UUID(organization_id))


@task("billing.warn_expiring_cards", every_seconds=24 * 3600)
async def warn_of_expiring_cards() -> int:
    return await warn_expiring_cards(current())
