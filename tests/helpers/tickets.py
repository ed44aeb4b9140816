"""Tickets as tests need them: SLA moments brought close, so warnings and breaches fire now."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import update

from hub.tasks import schedule
from tickets.models import Ticket

if TYPE_CHECKING:
    from tests.conftest import RunningHub


async def fast_forward(hub: RunningHub, organization_id: uuid.UUID, ticket_id: str, **due: datetime) -> None:
    """Bring a ticket's SLA moments close, and its timed checks with them."""
    async with hub.runtime.db.session(organization_id) as session:
        await session.execute(
            update(Ticket)
            .where(Ticket.id == uuid.UUID(ticket_id))
            .values(**due, sla_check_at=min(due.values()))
            .execution_options(synchronize_session=False)
        )
        for column, when in due.items():
            target = column.rsplit("_", 2)[0]
            stage = "warn" if column.endswith("warn_at") else "breach"
            await schedule(
                session,
                "tickets.check_sla",
                when,
                key=f"sla:{ticket_id}:{target}:{stage}",
                organization_id=str(organization_id),
                ticket_id=ticket_id,
            )
        await session.commit()
