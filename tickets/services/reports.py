"""The SLA report: targets met and breached over a period, by priority."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, select

from hub.db import HubAsyncSession
from hub.errors import InvalidInput
from hub.i18n import N_
from tickets.models import MET_AT, Ticket
from tickets.schemas import PRIORITIES, SlaReport, SlaReportRow, SlaShare


async def sla_report(session: HubAsyncSession, since: datetime, until: datetime) -> SlaReport:
    """Of the tickets opened in the period, how many met each target, per priority and per agent."""
    if until <= since:
        raise InvalidInput(N_("The end of the period must come after its start."), field="until")
    opened = and_(Ticket.created_at >= since, Ticket.created_at < until, Ticket.sla_policy_id.is_not(None))

    def counts(target: str) -> list[Any]:
        met_at = getattr(Ticket, MET_AT[target])
        breached = getattr(Ticket, f"{target}_breached_at")
        return [
            func.count(case((and_(met_at.is_not(None), breached.is_(None)), 1))),
            func.count(case((breached.is_not(None), 1))),
        ]

    columns = [func.count(), *counts("first_response"), *counts("resolution")]

    def row(priority: str | None, assignee: uuid.UUID | None, values: Any) -> SlaReportRow:
        total, first_met, first_breached, resolution_met, resolution_breached = values
        return SlaReportRow(
            priority=priority,
            assignee_id=assignee,
            first_response=_share(total, first_met, first_breached),
            resolution=_share(total, resolution_met, resolution_breached),
        )

    by_priority = {
        priority: values
        for priority, *values in await session.execute(
            select(Ticket.priority, *columns).where(opened).group_by(Ticket.priority)
        )
    }
    by_agent = list(
        await session.execute(
            select(Ticket.assignee_id, *columns)
            .where(opened, Ticket.assignee_id.is_not(None))
            .group_by(Ticket.assignee_id)
        )
    )
    return SlaReport(
        since=since,
        until=until,
        by_priority=[row(p, None, by_priority[p]) for p in PRIORITIES if p in by_priority],
        by_agent=[row(None, assignee, values) for assignee, *values in by_agent],
    )


def _share(total: int, met: int, breached: int) -> SlaShare:
    decided = met + breached
    return SlaShare(
        tickets=int(total),
        met=int(met),
        breached=int(breached),
        share_met=round(met / decided, 4) if decided else None,
    )
