"""Receipts and replies: delivered and read move a sent recipient on (one that comes before its
send's outcome is kept for it), and a customer who writes within a week replied."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import and_, delete, func, select, update

from campaigns.models import Campaign, CampaignRecipient, ChannelPacing, EarlyReceipt
from crm.services import record_activities
from hub.db import HubAsyncSession, one_of, utcnow
from hub.runtime import Runtime

log = structlog.get_logger(__name__)

EARLY_RECEIPTS_KEPT = timedelta(minutes=10)


async def follow_receipt(
    runtime: Runtime,
    organization_id: uuid.UUID,
    channel_id: uuid.UUID,
    external_id: str,
    status: str,
    reason: str | None,
) -> None:
    """A receipt for a campaign message moves its recipient on (read implies delivered). One
    that comes before its send's outcome is written is kept, and applied with the outcome."""
    async with runtime.db.session(organization_id) as session:
        if await apply_receipt(session, channel_id, external_id, status, reason):
            await session.commit()
            return
        lately = await session.scalar(
            select(ChannelPacing.last_send_at).where(ChannelPacing.channel_id == channel_id)
        )
        if lately is None or lately < utcnow() - EARLY_RECEIPTS_KEPT:
            return  # this channel sends no campaign now: a receipt for a reply, or for nothing
        early = EarlyReceipt(channel_id=channel_id, external_id=external_id, status=status, reason=reason)
        session.add(early)
        await session.commit()
        early_id = early.id
    # The outcome may have been written between the look and the keeping: look once more.
    async with runtime.db.session(organization_id) as session:
        if await apply_receipt(session, channel_id, external_id, status, reason):
            await session.execute(delete(EarlyReceipt).where(EarlyReceipt.id == early_id))
            await session.commit()


async def apply_receipt(
    session: HubAsyncSession, channel_id: uuid.UUID, external_id: str, status: str, reason: str | None
) -> bool:
    """Whether a sent recipient of the channel has this external id (and took the receipt)."""
    now = utcnow()
    r = CampaignRecipient
    target = and_(r.channel_id == channel_id, r.external_id == external_id)
    if status in ("delivered", "read"):
        values: dict[str, Any] = {"delivered_at": func.coalesce(r.delivered_at, now)}
        if status == "read":
            values["read_at"] = func.coalesce(r.read_at, now)
        moved = await session.execute(
            update(r)
            .where(target, r.status == "sent")
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(moved.rowcount)  # type: ignore[attr-defined]  # an UPDATE's result has rowcount; the stubs type it as Result
    if status == "failed":
        found = await session.scalar(select(r.status).where(target))
        if found is None:
            return False
        failed = (
            await session.execute(
                update(r)
                .where(target, r.status == "sent", r.read_at.is_(None))
                .values(status="failed", error=(reason or "failed on the channel")[:500])
                .returning(r.campaign_id)
                .execution_options(synchronize_session=False)
            )
        ).all()
        for (campaign_id,) in failed:
            await session.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id)
                .values(sent=Campaign.sent - 1, failed=Campaign.failed + 1)
                .execution_options(synchronize_session=False)
            )
        return found != "sending"
    return True  # "sent" says nothing the outcome does not


REPLY_WINDOW = timedelta(days=7)


async def customers_replied(
    runtime: Runtime, organization_id: uuid.UUID, last_written: dict[uuid.UUID, datetime]
) -> None:
    """Customers who wrote (each at their moment) within a week after a campaign message replied
    to it; marking it again changes nothing. One look-up for them all (most find nothing), then
    an update per moment only where a campaign message was answered."""
    if not last_written:
        return
    r = CampaignRecipient
    async with runtime.db.session(organization_id) as session:
        candidates = (
            await session.execute(
                select(r.id, r.campaign_id, r.customer_id, r.sent_at).where(
                    one_of(session, r.customer_id, last_written),
                    r.status == "sent",
                    r.replied_at.is_(None),
                    r.sent_at >= min(last_written.values()) - REPLY_WINDOW,
                )
            )
        ).all()
        answered: dict[datetime, list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]]] = {}
        for recipient_id, campaign_id, customer_id, sent_at in candidates:
            if customer_id is None or sent_at is None:
                continue
            at = last_written[customer_id]
            if at - REPLY_WINDOW <= sent_at <= at:
                answered.setdefault(at, []).append((recipient_id, campaign_id, customer_id))
        for at, rows in answered.items():
            replied = (
                await session.execute(
                    update(r)
                    .where(r.id.in_([row[0] for row in rows]), r.replied_at.is_(None))
                    .values(
                        replied_at=at,
                        delivered_at=func.coalesce(r.delivered_at, at),
                        read_at=func.coalesce(r.read_at, at),
                    )
                    .returning(r.id, r.campaign_id, r.customer_id)
                    .execution_options(synchronize_session=False)
                )
            ).all()
            await record_activities(
                session,
                [
                    {
                        "customer_id": customer_id,
                        "kind": "campaign_replied",
                        "details": {"campaign_id": str(campaign_id), "message_id": str(recipient_id)},
                        "key": f"campaign_replied:{recipient_id}",
                        "at": at,
                    }
                    for recipient_id, campaign_id, customer_id in replied
                ],
            )
        await session.commit()
