"""Billing's timed work: a downgrade applied when the period paid for ends."""

from __future__ import annotations

import uuid

from hub.billing import services
from hub.runtime import current
from hub.tasks import task


@task("billing.apply_plan_change")
async def apply_plan_change(organization_id: str) -> None:
    await services.apply_pending_change(current(), uuid.UUID(organization_id))
