"""What no sender is doing: scheduled campaigns that are due, sends left in doubt once they are
surely over (settled from the channel's record, or `unknown`, never sent again blindly), and a
sender woken on every channel with work."""

from __future__ import annotations

import uuid
from datetime import timedelta

import structlog
from sqlalchemy import delete, select

from campaigns.lifecycle import begin_scheduled, finish_if_done
from campaigns.models import Campaign, CampaignChannel, CampaignRecipient, ChannelPacing, EarlyReceipt
from campaigns.sending.outcomes import Outcome, record_outcomes, resolve
from campaigns.sending.receipts import EARLY_RECEIPTS_KEPT
from campaigns.sending.sender import Claim
from campaigns.services import ensure_pacing
from channels.adapters import SETTLE_MARGIN
from channels.models import Channel
from hub.db import utcnow
from hub.runtime import Runtime
from hub.tasks import kick

log = structlog.get_logger(__name__)


async def sweep(runtime: Runtime) -> int:
    """Start scheduled campaigns that are due, settle sends left in doubt, finish campaigns with
    nothing left, and wake a sender on every channel that has work."""
    now = utcnow()
    async with runtime.db.system_session() as session:
        due = (
            await session.execute(
                select(Campaign.organization_id, Campaign.id).where(
                    Campaign.status == "scheduled", Campaign.starts_at <= now
                )
            )
        ).all()
        running = (
            await session.execute(
                select(Campaign.organization_id, Campaign.id, CampaignChannel.channel_id)
                .join(CampaignChannel, CampaignChannel.campaign_id == Campaign.id)
                .where(Campaign.status == "running")
            )
        ).all()
    for organization_id, campaign_id in due:
        await begin_scheduled(runtime, organization_id, campaign_id)
    settled = await settle_in_doubt(runtime)
    async with runtime.db.system_session() as session:  # receipts whose send never wrote an outcome
        await session.execute(delete(EarlyReceipt).where(EarlyReceipt.created_at < now - EARLY_RECEIPTS_KEPT))
        await session.commit()
    woken: set[tuple[uuid.UUID, uuid.UUID]] = set()
    finished: set[tuple[uuid.UUID, uuid.UUID]] = set()
    for organization_id, campaign_id, channel_id in running:
        finished.add((organization_id, campaign_id))
        woken.add((organization_id, channel_id))
    for organization_id, campaign_id in finished:
        async with runtime.db.session(organization_id) as session:
            await finish_if_done(session, campaign_id)
            await session.commit()
    for organization_id, channel_id in woken:
        async with runtime.db.session(organization_id) as session:
            await ensure_pacing(session, [channel_id])
            await session.commit()
        await kick(
            "campaigns.send_on_channel", organization_id=str(organization_id), channel_id=str(channel_id)
        )
    return settled


async def settle_in_doubt(runtime: Runtime, limit: int = 500) -> int:
    """Recipients left `sending` once their send is surely over (its time to finish passed, and
    its sender had a moment to write it): the channel's record decides. Each is settled over the
    claim it was read with, so a sender's late outcome and this never both count."""
    now = utcnow()
    over_before = now - timedelta(seconds=runtime.settings.send_seconds) - SETTLE_MARGIN
    async with runtime.db.system_session() as session:
        stale = (
            await session.execute(
                select(CampaignRecipient, ChannelPacing.lease_holder, ChannelPacing.lease_until)
                .outerjoin(ChannelPacing, ChannelPacing.channel_id == CampaignRecipient.channel_id)
                .where(CampaignRecipient.status == "sending", CampaignRecipient.claimed_at < over_before)
                .limit(limit)
            )
        ).all()
    settled = 0
    channels: dict[uuid.UUID, Channel | None] = {}
    for recipient, holder, lease_until in stale:
        if holder == recipient.claimed_by and lease_until is not None and lease_until > now:
            continue  # its sender is alive and will write it
        organization_id, channel_id = recipient.organization_id, recipient.channel_id
        assert channel_id is not None  # a recipient being sent has its channel
        async with runtime.db.session(organization_id) as session:
            if channel_id not in channels:
                channels[channel_id] = await session.get(Channel, channel_id)
            channel = channels[channel_id]
            claim = Claim(
                recipient.id,
                recipient.campaign_id,
                recipient.customer_id,
                recipient.phone,
                recipient.text or "",
                await session.scalar(select(Campaign.media_id).where(Campaign.id == recipient.campaign_id)),
                claimed_by=recipient.claimed_by,
            )
            if channel is None:
                outcome = Outcome(
                    recipient.id,
                    recipient.campaign_id,
                    recipient.customer_id,
                    channel_id,
                    "unknown",
                    now,
                    error="in doubt: the channel was removed",
                    claimed_by=recipient.claimed_by,
                )
            else:
                outcome = await resolve(channel, claim, reason="the sender stopped before it knew")
            log.info("campaign send settled", recipient=str(recipient.id), status=outcome.status)
            await record_outcomes(session, [outcome])
        settled += 1
    return settled
