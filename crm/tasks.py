"""Background work of the CRM: rescoring leads when the rules change, and as time passes."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from crm import services
from hub.models import Organization
from hub.runtime import current
from hub.tasks import task


@task("crm.rescore_organization")
async def rescore_organization(organization_id: str) -> int:
    return await services.rescore_organization(current(), uuid.UUID(organization_id))


@task("crm.rescore_recent", every_seconds=3600)
async def rescore_recent() -> int:
    """Recent-message points come and go with time alone: an hourly look at who may have changed."""
    runtime = current()
    async with runtime.db.system_session() as session:
        organizations = list(await session.scalars(select(Organization.id)))
    return sum([await services.rescore_organization(runtime, org, only_recent=True) for org in organizations])


@task("crm.run_import")
async def run_import(organization_id: str, import_id: str) -> None:
    await services.run_import(current(), uuid.UUID(organization_id), uuid.UUID(import_id))
