"""Timed work of tickets: SLA checks at their moments, and a sweep that misses nothing."""

from __future__ import annotations

import uuid

from hub.runtime import current
from hub.tasks import task
from tickets import services


@task("tickets.check_sla")
async def check_sla(organization_id: str, ticket_id: str) -> list[str]:
    return await services.check_sla(current(), uuid.UUID(organization_id), uuid.UUID(ticket_id))


@task("tickets.sweep_sla", every_seconds=60)
async def sweep_sla() -> int:
    return await services.sweep_sla(current())
