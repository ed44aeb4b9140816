"""A campaign's results: counts by state, rates, the figures per channel and per minute, and
its recipients, listed and exported."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import Select, func, literal_column, select

from campaigns.models import CampaignRecipient
from campaigns.schemas import ChannelResult, Counts, FailureResult, MinuteResult, Rates, ResultsOut
from campaigns.services import get_campaign
from campaigns.views import furthest_state
from channels.models import Channel
from hub.db import HubAsyncSession, on_postgres
from hub.pagination import paginate
from hub.runtime import Runtime
from hub.spreadsheets import safe_cell

log = structlog.get_logger(__name__)

EXPORT_BATCH = 1000


async def list_recipients(
    session: HubAsyncSession, campaign_id: uuid.UUID, *, status: list[str], cursor: str | None, limit: int
) -> tuple[list[CampaignRecipient], str | None]:
    await get_campaign(session, campaign_id)
    statement: Select[Any] = select(CampaignRecipient).where(CampaignRecipient.campaign_id == campaign_id)
    if status:
        statement = statement.where(CampaignRecipient.status.in_(status))
    rows, next_cursor = await paginate(
        session, statement, CampaignRecipient.id, cursor=cursor, limit=limit, newest_first=False
    )
    return [row[0] for row in rows], next_cursor


async def export_recipients(
    runtime: Runtime, organization_id: uuid.UUID, campaign_id: uuid.UUID
) -> AsyncIterator[str]:
    """Every recipient with their state, as CSV, a batch at a time (flat memory, short reads)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "id",
            "phone",
            "customer_id",
            "status",
            "state",
            "channel_id",
            "error",
            "sent_at",
            "delivered_at",
            "read_at",
            "replied_at",
        ]
    )
    after: uuid.UUID | None = None
    while True:
        async with runtime.db.session(organization_id) as session:
            statement = (
                select(CampaignRecipient)
                .where(CampaignRecipient.campaign_id == campaign_id)
                .order_by(CampaignRecipient.id)
                .limit(EXPORT_BATCH)
            )
            if after is not None:
                statement = statement.where(CampaignRecipient.id > after)
            batch = list(await session.scalars(statement))
        for r in batch:
            writer.writerow(
                [
                    r.id,
                    r.phone,
                    r.customer_id or "",
                    r.status,
                    furthest_state(r),
                    r.channel_id or "",
                    safe_cell(r.error),
                    *(
                        moment.isoformat() if moment else ""
                        for moment in (r.sent_at, r.delivered_at, r.read_at, r.replied_at)
                    ),
                ]
            )
        if out.tell():
            yield out.getvalue()
            out.seek(0)
            out.truncate()
        if len(batch) < EXPORT_BATCH:
            return
        after = batch[-1].id


async def counts_of(session: HubAsyncSession, campaign_id: uuid.UUID) -> Counts:
    r = CampaignRecipient
    by_status = dict(
        (
            await session.execute(
                select(r.status, func.count()).where(r.campaign_id == campaign_id).group_by(r.status)
            )
        ).all()
    )
    later = (
        await session.execute(
            select(func.count(r.delivered_at), func.count(r.read_at), func.count(r.replied_at)).where(
                r.campaign_id == campaign_id
            )
        )
    ).one()
    return Counts(
        **{
            status: int(by_status.get(status, 0))
            for status in ("pending", "sending", "sent", "failed", "skipped", "unknown")
        },
        delivered=int(later[0]),
        read=int(later[1]),
        replied=int(later[2]),
    )


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _minute(column: Any, postgres: bool) -> Any:
    if postgres:
        return func.date_trunc(literal_column("'minute'"), column)  # one expression in SELECT and GROUP BY
    return func.strftime(literal_column("'%Y-%m-%d %H:%M:00'"), column)


async def results(session: HubAsyncSession, campaign_id: uuid.UUID) -> ResultsOut:
    campaign = await get_campaign(session, campaign_id)
    r = CampaignRecipient
    counts = await counts_of(session, campaign_id)
    per_channel = (
        await session.execute(
            select(
                r.channel_id,
                func.count().filter(r.status == "sent"),
                func.count().filter(r.status == "failed"),
                func.count().filter(r.status == "unknown"),
                func.count(r.delivered_at),
                func.count(r.read_at),
                func.count(r.replied_at),
            )
            .where(r.campaign_id == campaign_id, r.channel_id.is_not(None))
            .group_by(r.channel_id)
        )
    ).all()
    names = dict(
        (
            await session.execute(
                select(Channel.id, Channel.name).where(Channel.id.in_([row[0] for row in per_channel]))
            )
        ).all()
    )
    minute = _minute(r.finished_at, on_postgres(session)).label("minute")
    minutes = (
        await session.execute(
            select(minute, func.count().filter(r.status == "sent"), func.count().filter(r.status == "failed"))
            .where(r.campaign_id == campaign_id, r.status.in_(("sent", "failed")), r.finished_at.is_not(None))
            .group_by(minute)
            .order_by(minute)
        )
    ).all()
    failures = (
        await session.execute(
            select(r.error, func.count())
            .where(r.campaign_id == campaign_id, r.status.in_(("failed", "unknown", "skipped")))
            .group_by(r.error)
            .order_by(func.count().desc())
            .limit(50)
        )
    ).all()
    return ResultsOut(
        campaign_id=campaign.id,
        status=campaign.status,  # type: ignore[arg-type]  # the column holds only the Literal's values
        total=campaign.total,
        counts=counts,
        rates=Rates(
            delivery=_share(counts.delivered, counts.sent),
            read=_share(counts.read, counts.sent),
            reply=_share(counts.replied, counts.sent),
        ),
        channels=[
            ChannelResult(
                channel_id=row[0],
                name=names.get(row[0]),
                sent=row[1],
                failed=row[2],
                unknown=row[3],
                delivered=row[4],
                read=row[5],
                replied=row[6],
            )
            for row in per_channel
            if row[0] is not None  # as the query keeps only recipients with a channel
        ],
        per_minute=[MinuteResult(minute=_as_minute(row[0]), sent=row[1], failed=row[2]) for row in minutes],
        failures=[FailureResult(reason=row[0] or "", count=row[1]) for row in failures],
        audience_report=dict(campaign.audience_report or {}),
    )


def _as_minute(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)
