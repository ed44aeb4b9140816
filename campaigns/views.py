"""What the API and the sockets carry of campaigns, their recipients and their channels' pacing,
in the reader's language, and who follows campaigns live (those who may read them)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import structlog

from campaigns.events import CampaignProgress
from campaigns.models import Campaign, CampaignRecipient, ChannelPacing
from campaigns.pacing import PacingState, next_slot, rules_of, state_of
from campaigns.schemas import CampaignOut, PacingOut, PacingRulesOut, RecipientOut
from channels.adapters import STATE_NAMES
from channels.models import Channel
from hub.audience import campaign_readers
from hub.db import HubAsyncSession, utcnow
from hub.i18n import N_, Term, translate
from hub.realtime import SocketEvent, push

log = structlog.get_logger(__name__)


STATUS_NAMES = {
    "draft": Term(N_("draft")),
    "scheduled": Term(N_("scheduled")),
    "running": Term(N_("running")),
    "paused": Term(N_("paused")),
    "completed": Term(N_("completed")),
    "cancelled": Term(N_("cancelled")),
}
PAUSE_MESSAGES = {
    "manual": N_("Paused by {user}."),
    "channel_disconnected": N_("Paused: the sending profile {channel} is {state}."),
    "channel_logged_out": N_("Paused: the sending profile {channel} logged out; connect it again to resume."),
    "failures": N_("Paused: {failed} of the last {window} messages failed."),
    "channel_unreachable": N_("Paused: the channel {channel} could not be reached ({reason})."),
}


def pause_message(campaign: Campaign, language: str) -> str | None:
    if campaign.status != "paused" or campaign.pause_reason is None:
        return None
    details = dict(campaign.pause_details or {})
    if "state" in details:
        details["state"] = STATE_NAMES.get(details["state"], details["state"])
    message = PAUSE_MESSAGES.get(campaign.pause_reason)
    if message is None:
        return campaign.pause_reason
    try:
        return translate(language, message, **details)
    except (KeyError, IndexError):
        return translate(language, message.split(":")[0])


def campaign_out(campaign: Campaign, channel_ids: list[uuid.UUID], language: str) -> CampaignOut:
    return CampaignOut(
        id=campaign.id,
        name=campaign.name,
        status=campaign.status,  # type: ignore[arg-type]  # the column holds only the Literal's values
        channel_ids=channel_ids,
        template=dict(campaign.template),
        media_id=campaign.media_id,
        audience=dict(campaign.audience),
        audience_status=campaign.audience_status,
        audience_report=dict(campaign.audience_report or {}),
        total=campaign.total,
        starts_at=campaign.starts_at,
        window_start=campaign.window_start,
        window_end=campaign.window_end,
        avoid_repeats=campaign.avoid_repeats,
        failure_window=campaign.failure_window,
        failure_threshold=campaign.failure_threshold,
        pause_reason=campaign.pause_reason if campaign.status == "paused" else None,
        pause_message=pause_message(campaign, language),
        sent=campaign.sent,
        failed=campaign.failed,
        skipped=campaign.skipped,
        unknown=campaign.unknown,
        created_by=campaign.created_by,
        created_at=campaign.created_at,
        started_at=campaign.started_at,
        paused_at=campaign.paused_at,
        finished_at=campaign.finished_at,
    )


def push_campaign(session: HubAsyncSession, message: SocketEvent) -> None:
    """To whoever follows campaigns live (those who may read them)."""
    push(session, message, campaign_readers())


def recipient_out(recipient: CampaignRecipient) -> RecipientOut:
    return RecipientOut(
        id=recipient.id,
        customer_id=recipient.customer_id,
        phone=recipient.phone,
        status=recipient.status,  # type: ignore[arg-type]  # the column holds only the Literal's values
        channel_id=recipient.channel_id,
        text=recipient.text,
        error=recipient.error,
        sent_at=recipient.sent_at,
        delivered_at=recipient.delivered_at,
        read_at=recipient.read_at,
        replied_at=recipient.replied_at,
    )


def furthest_state(recipient: Any) -> str:
    """sent, then delivered, read, replied as they happen; otherwise the status itself."""
    for name in ("replied", "read", "delivered"):
        if getattr(recipient, f"{name}_at") is not None:
            return name
    return str(recipient.status)


def pacing_out(channel: Channel, row: ChannelPacing | None, time_zone: str) -> PacingOut:
    rules = rules_of(channel.kind, row.rules if row else {})
    state = state_of(row) if row else PacingState()
    zone_rules = replace(rules, window_start=None, window_end=None, time_zone=time_zone)
    return PacingOut(
        channel_id=channel.id,
        name=channel.name,
        kind=channel.kind,
        rules=PacingRulesOut(
            min_gap_seconds=rules.min_gap_seconds,
            jitter_seconds=rules.jitter_seconds,
            hourly_cap=rules.hourly_cap,
            daily_cap=rules.daily_cap,
            pause_every=rules.pause_every,
            pause_seconds=rules.pause_seconds,
            warmup_daily_caps=list(rules.warmup_daily_caps),
        ),
        next_send_at=next_slot(state, zone_rules, utcnow()) if row else None,
        sent_this_hour=state.sent_this_hour,
        sent_today=state.sent_today,
        first_day=state.first_day,
    )


def progress_of(campaign: Campaign) -> CampaignProgress:
    current = campaign.sent + campaign.failed + campaign.skipped + campaign.unknown
    return CampaignProgress(
        campaign_id=campaign.id,
        current=current,
        total=campaign.total,
        sent=campaign.sent,
        failed=campaign.failed,
        skipped=campaign.skipped,
        unknown=campaign.unknown,
        remaining=max(0, campaign.total - current),
        status=campaign.status,
    )
