"""Campaigns, their recipients and sending channels, and each channel's pacing state."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, TenantMixin

STATUSES = ("draft", "scheduled", "running", "paused", "completed", "cancelled")
# What a recipient goes through; `unknown`: a send was begun but whether it reached the
# channel cannot be told, so it is never tried again.
RECIPIENT_STATUSES = ("pending", "sending", "sent", "failed", "skipped", "unknown")
FINISHED = ("sent", "failed", "skipped", "unknown")


class Campaign(Base, TenantMixin):
    __tablename__ = "campaigns"
    __table_args__ = (Index("ix_campaigns_org_status", "organization_id", "status", "id"),)

    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(12), default="draft")
    # The message by language ({"ar": "...", "en": "..."}), with variables and variations.
    template: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    media_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("media.id", ondelete="SET NULL"))
    # Who receives it: {"segment_id"} or {"customer_ids"} or {"media_id", "phone_column", "name_column"}.
    audience: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    audience_status: Mapped[str] = mapped_column(String(10), default="building")  # building, ready, failed
    # Counts of the audience as built: matched, excluded by reason, and the CSV's bad rows.
    audience_report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    total: Mapped[int] = mapped_column(default=0)  # recipients to send to
    starts_at: Mapped[datetime | None]
    window_start: Mapped[str | None] = mapped_column(String(5))  # "09:00", local to the organization
    window_end: Mapped[str | None] = mapped_column(String(5))
    # Never send the same text to the same customer twice within a day, across campaigns.
    avoid_repeats: Mapped[bool] = mapped_column(default=False)
    # Pause by itself when this share (in percent) of the last `failure_window` sends failed.
    failure_window: Mapped[int] = mapped_column(default=20)
    failure_threshold: Mapped[int] = mapped_column(default=50)
    # Why it paused: manual, channel_disconnected, channel_logged_out, failures; with details.
    pause_reason: Mapped[str | None] = mapped_column(String(24))
    pause_details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    started_at: Mapped[datetime | None]
    paused_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]  # completed or cancelled
    # Written in batches by the senders.
    sent: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    unknown: Mapped[int] = mapped_column(default=0)
    # The last campaignProgress: senders in every process share this, so pushes stay few.
    progress_pushed_at: Mapped[datetime | None]


class CampaignChannel(Base, TenantMixin):
    """A channel a campaign sends through; several share its recipients."""

    __tablename__ = "campaign_channels"
    __table_args__ = (UniqueConstraint("campaign_id", "channel_id"),)

    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"), index=True)


class CampaignRecipient(Base, TenantMixin):
    """One number a campaign sends to, once. Its id is the sent message's id everywhere: in the
    inbox, and as the idempotency key the channel receives."""

    __tablename__ = "campaign_recipients"
    __table_args__ = (
        UniqueConstraint("campaign_id", "phone"),
        # The next pending recipient, in order, is the first entry under (campaign, "pending").
        Index("ix_campaign_recipients_campaign_status", "campaign_id", "status", "id"),
        Index("ix_campaign_recipients_channel_external", "channel_id", "external_id"),
        Index("ix_campaign_recipients_customer_sent", "customer_id", "sent_at"),
        Index("ix_campaign_recipients_campaign_finished", "campaign_id", "finished_at"),
    )

    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    phone: Mapped[str] = mapped_column(String(20))  # E.164
    status: Mapped[str] = mapped_column(String(10), default="pending")
    channel_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    text: Mapped[str | None] = mapped_column(Text)
    text_hash: Mapped[str | None] = mapped_column(String(32))
    external_id: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(String(500))
    # The sender that marked it sending, so an in-doubt send is told from one still under way.
    claimed_by: Mapped[str | None] = mapped_column(String(32))
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]
    replied_at: Mapped[datetime | None]


class ChannelPacing(Base, TenantMixin):
    """A sending channel's pacing rules and state, shared by every process and every campaign
    that sends through it; one sender at a time holds its lease."""

    __tablename__ = "channel_pacing"
    __table_args__ = (UniqueConstraint("channel_id"),)

    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    # Changes from the defaults of the channel's kind, by PacingRules field.
    rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    not_before: Mapped[datetime | None]
    hour_started_at: Mapped[datetime | None]
    sent_this_hour: Mapped[int] = mapped_column(default=0)
    day: Mapped[date | None]
    sent_today: Mapped[int] = mapped_column(default=0)
    sent_in_a_row: Mapped[int] = mapped_column(default=0)
    first_day: Mapped[date | None]
    # When the last send was claimed: the next one waits the minimum gap after it, even when it
    # was counted at its planned moment.
    last_send_at: Mapped[datetime | None]
    lease_holder: Mapped[str | None] = mapped_column(String(32))
    lease_until: Mapped[datetime | None]


class EarlyReceipt(Base, TenantMixin):
    """A receipt that came before its send's outcome was written (the writer batches them): kept
    a little while, and applied when the outcome is written."""

    __tablename__ = "campaign_early_receipts"
    __table_args__ = (Index("ix_campaign_early_receipts_channel_external", "channel_id", "external_id"),)

    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10))  # delivered, read, failed
    reason: Mapped[str | None] = mapped_column(String(500))
