"""Every change of a campaign's status, in one place: start (now or scheduled), pause (by a
person, or by itself with the reason), resume, cancel, and completion when no one is left."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select, update

from campaigns.events import CampaignCompleted, CampaignUpdated
from campaigns.models import Campaign, CampaignChannel, CampaignRecipient
from campaigns.results import counts_of, results
from campaigns.services import channel_ids_of, check_start, ensure_pacing, get_campaign, wake_channels
from campaigns.views import STATUS_NAMES, progress_of, push_campaign
from channels.adapters import STATE_NAMES
from channels.models import Channel
from hub.auth import CurrentUser
from hub.billing.services.limits import require_room
from hub.db import HubAsyncSession, utcnow
from hub.errors import Conflict, InvalidInput
from hub.i18n import N_, Term
from hub.runtime import Runtime
from hub.services import count_usage
from hub.tasks import schedule

log = structlog.get_logger(__name__)


async def schedule_start(session: HubAsyncSession, campaign: Campaign) -> None:
    assert campaign.starts_at is not None
    await schedule(
        session,
        "campaigns.begin",
        campaign.starts_at,
        key=f"campaigns.begin:{campaign.id}",
        organization_id=str(campaign.organization_id),
        campaign_id=str(campaign.id),
    )


async def _ready_channels(session: HubAsyncSession, campaign: Campaign) -> list[uuid.UUID]:
    channel_ids = await channel_ids_of(session, campaign.id)
    if not channel_ids:
        raise InvalidInput(N_("The campaign has no sending channel left."), field="channel_ids")
    for channel in await session.scalars(select(Channel).where(Channel.id.in_(channel_ids))):
        if channel.state != "ready":
            raise Conflict(
                N_("The sending profile {channel} is {state}."),
                field="channel_ids",
                channel=channel.name,
                state=STATE_NAMES.get(channel.state, Term(channel.state)),
            )
    return channel_ids


async def start_campaign(
    session: HubAsyncSession, campaign_id: uuid.UUID, starts_at: datetime | None
) -> Campaign:
    campaign = await get_campaign(session, campaign_id, lock=True)
    if campaign.status not in ("draft", "scheduled"):
        message = {
            "running": N_("The campaign is already running."),
            "paused": N_("The campaign is paused; resume it instead."),
        }.get(campaign.status, N_("A campaign that is {status} cannot be started."))
        raise Conflict(message, field="status", status=STATUS_NAMES[campaign.status])
    if campaign.audience_status == "building":
        raise Conflict(N_("The recipients are still being counted; try again in a moment."), field="audience")
    if campaign.audience_status == "failed" or campaign.total == 0:
        raise InvalidInput(N_("No one would receive this campaign."), field="audience")
    given = await check_start(session, starts_at, "starts_at")
    if campaign.status == "draft":  # counted once, when first started or scheduled
        # What is left of the month's recipients must hold the whole audience, before any send.
        await require_room(session, "campaign_recipients_per_month", adding=campaign.total)
        await count_usage(session, "campaign_recipients", campaign.total)
    begin_at = given or campaign.starts_at
    channel_ids = await _ready_channels(session, campaign)
    if begin_at is not None and begin_at > utcnow():
        campaign.status, campaign.starts_at = "scheduled", begin_at
        await schedule_start(session, campaign)
    else:
        await _run(session, campaign, channel_ids)
    push_campaign(session, CampaignUpdated(campaign_id=campaign.id, status=campaign.status))
    await session.commit()
    return campaign


async def _run(session: HubAsyncSession, campaign: Campaign, channel_ids: list[uuid.UUID]) -> None:
    campaign.status, campaign.pause_reason, campaign.pause_details = "running", None, {}
    campaign.started_at = campaign.started_at or utcnow()
    await ensure_pacing(session, channel_ids)
    wake_channels(session, channel_ids)


async def begin_scheduled(runtime: Runtime, organization_id: uuid.UUID, campaign_id: uuid.UUID) -> None:
    """A scheduled campaign's start time came (the timed job, or the sweep as its backstop)."""
    async with runtime.db.session(organization_id) as session:
        campaign = await session.scalar(select(Campaign).where(Campaign.id == campaign_id).with_for_update())
        if campaign is None or campaign.status != "scheduled":
            return
        if campaign.starts_at is not None and campaign.starts_at > utcnow() + timedelta(seconds=1):
            return  # moved later meanwhile; its own job will come
        await _run(session, campaign, await channel_ids_of(session, campaign.id))
        push_campaign(session, CampaignUpdated(campaign_id=campaign.id, status=campaign.status))
        await session.commit()


async def pause_campaign(session: HubAsyncSession, actor: CurrentUser, campaign_id: uuid.UUID) -> Campaign:
    """Once this returns no new send begins: senders claim a recipient only while holding the
    campaign's gate shared, and this holds it alone (`hold_sends`)."""
    campaign = await get_campaign(session, campaign_id, lock=True)
    if campaign.status not in ("running", "scheduled"):
        raise Conflict(
            N_("A campaign that is {status} cannot be paused."),
            field="status",
            status=STATUS_NAMES[campaign.status],
        )
    campaign.status, campaign.paused_at = "paused", utcnow()
    campaign.pause_reason, campaign.pause_details = "manual", {"user": actor.full_name}
    push_campaign(session, CampaignUpdated(campaign_id=campaign.id, status=campaign.status, reason="manual"))
    await session.commit()
    return campaign


async def resume_campaign(session: HubAsyncSession, campaign_id: uuid.UUID) -> Campaign:
    campaign = await get_campaign(session, campaign_id, lock=True)
    if campaign.status != "paused":
        message = {
            "cancelled": N_("A cancelled campaign cannot be resumed."),
            "running": N_("The campaign is already running."),
        }.get(campaign.status, N_("A campaign that is {status} cannot be resumed."))
        raise Conflict(message, field="status", status=STATUS_NAMES[campaign.status])
    channel_ids = await _ready_channels(session, campaign)
    if campaign.started_at is None and campaign.starts_at is not None and campaign.starts_at > utcnow():
        campaign.status = "scheduled"
        await schedule_start(session, campaign)
    else:
        await _run(session, campaign, channel_ids)
    campaign.pause_reason, campaign.pause_details = None, {}
    push_campaign(session, CampaignUpdated(campaign_id=campaign.id, status=campaign.status))
    await session.commit()
    return campaign


async def cancel_campaign(session: HubAsyncSession, campaign_id: uuid.UUID) -> Campaign:
    """Nothing more is sent; recipients not reached stay pending, so the results show them."""
    campaign = await get_campaign(session, campaign_id, lock=True)
    if campaign.status in ("completed", "cancelled"):
        raise Conflict(
            N_("A campaign that is {status} cannot be cancelled."),
            field="status",
            status=STATUS_NAMES[campaign.status],
        )
    campaign.status, campaign.finished_at = "cancelled", utcnow()
    push_campaign(session, CampaignUpdated(campaign_id=campaign.id, status=campaign.status))
    await session.commit()
    return campaign


async def pause_on_failures(session: HubAsyncSession, campaign_id: uuid.UUID) -> None:
    campaign = await session.get(Campaign, campaign_id, populate_existing=True)
    if campaign is None or campaign.status != "running":
        return
    window = campaign.failure_window
    latest = list(
        await session.scalars(
            select(CampaignRecipient.status)
            .where(
                CampaignRecipient.campaign_id == campaign_id,
                CampaignRecipient.status.in_(("sent", "failed", "unknown")),
                CampaignRecipient.finished_at.is_not(None),
            )
            .order_by(CampaignRecipient.finished_at.desc())
            .limit(window)
        )
    )
    failed = latest.count("failed")
    if len(latest) >= window and failed * 100 >= campaign.failure_threshold * window:
        _pause(session, campaign, "failures", {"failed": failed, "window": window})


def _pause(session: HubAsyncSession, campaign: Campaign, reason: str, details: dict[str, Any]) -> None:
    campaign.status, campaign.paused_at = "paused", utcnow()
    campaign.pause_reason, campaign.pause_details = reason, details
    log.info("campaign paused", campaign=str(campaign.id), reason=reason)
    push_campaign(
        session, CampaignUpdated(campaign_id=campaign.id, status="paused", reason=reason, details=details)
    )


async def pause_on_channel(
    session: HubAsyncSession, channel_id: uuid.UUID, reason: str, details: dict[str, Any]
) -> None:
    """Every running campaign sending through this channel pauses, with the reason shown."""
    campaigns = await session.scalars(
        select(Campaign)
        .join(CampaignChannel, CampaignChannel.campaign_id == Campaign.id)
        .where(CampaignChannel.channel_id == channel_id, Campaign.status == "running")
        .with_for_update(of=Campaign)
    )
    for campaign in campaigns:
        _pause(session, campaign, reason, details)


async def finish_if_done(session: HubAsyncSession, campaign_id: uuid.UUID) -> bool:
    """A running campaign with no recipient left pending or sending is completed: its counts are
    taken afresh and `campaignCompleted` carries its results."""
    left = await session.scalar(
        select(CampaignRecipient.id)
        .where(
            CampaignRecipient.campaign_id == campaign_id, CampaignRecipient.status.in_(("pending", "sending"))
        )
        .limit(1)
    )
    if left is not None:
        return False
    done = await session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status == "running")
        .values(status="completed", finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if not done.rowcount:  # type: ignore[attr-defined]  # an UPDATE's result has rowcount; the stubs type it as Result
        return False
    counts = await counts_of(session, campaign_id)
    await session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id)
        .values(sent=counts.sent, failed=counts.failed, skipped=counts.skipped, unknown=counts.unknown)
        .execution_options(synchronize_session=False)
    )
    campaign = await session.get(Campaign, campaign_id, populate_existing=True)
    assert campaign is not None
    push_campaign(session, progress_of(campaign))
    push_campaign(
        session, CampaignCompleted(campaign_id=campaign_id, results=await results(session, campaign_id))
    )
    return True
