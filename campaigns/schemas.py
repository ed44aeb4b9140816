"""Request and response bodies of /api/campaigns."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from hub.schemas import Language, Request

Name = Annotated[str, Meta(min_length=1, max_length=200)]
Text = Annotated[str, Meta(min_length=1, max_length=4096)]
Template = Annotated[dict[Language, Text], Meta(min_length=1)]
ClockTime = Annotated[str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
ChannelIds = Annotated[list[uuid.UUID], Meta(min_length=1, max_length=50)]
FailureWindow = Annotated[int, Meta(ge=5, le=1000)]
FailureThreshold = Annotated[int, Meta(ge=1, le=100)]
Column = Annotated[str, Meta(min_length=1, max_length=100)]
Status = Literal["draft", "scheduled", "running", "paused", "completed", "cancelled"]
RecipientStatus = Literal["pending", "sending", "sent", "failed", "skipped", "unknown"]


class AudienceIn(Struct, forbid_unknown_fields=True, kw_only=True):
    """Exactly one of: a saved segment, customer ids, or an uploaded CSV file of phone numbers."""

    segment_id: uuid.UUID | None = None
    customer_ids: Annotated[list[uuid.UUID], Meta(max_length=10_000)] | None = None
    media_id: uuid.UUID | None = None  # a CSV uploaded through /api/media
    phone_column: Column = "phone"
    name_column: Column | None = "name"


class CampaignIn(Request):
    name: Name
    channel_ids: ChannelIds
    template: Template
    audience: AudienceIn
    media_id: uuid.UUID | None = None
    starts_at: datetime | None = None  # none: when started
    window_start: ClockTime | None = None  # local to the organization; both or neither
    window_end: ClockTime | None = None
    avoid_repeats: bool = False
    failure_window: FailureWindow = 20
    failure_threshold: FailureThreshold = 50


class CampaignUpdate(Request):
    name: Name | UnsetType = UNSET
    channel_ids: ChannelIds | UnsetType = UNSET
    template: Template | UnsetType = UNSET
    audience: AudienceIn | UnsetType = UNSET
    media_id: uuid.UUID | UnsetType | None = UNSET
    starts_at: datetime | UnsetType | None = UNSET
    window_start: ClockTime | UnsetType | None = UNSET
    window_end: ClockTime | UnsetType | None = UNSET
    avoid_repeats: bool | UnsetType = UNSET
    failure_window: FailureWindow | UnsetType = UNSET
    failure_threshold: FailureThreshold | UnsetType = UNSET


class StartRequest(Request):
    starts_at: datetime | None = None  # later, in place of the campaign's own start time


class Counts(Struct):
    pending: int = 0
    sending: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    unknown: int = 0
    delivered: int = 0
    read: int = 0
    replied: int = 0


class CampaignOut(Struct):
    id: uuid.UUID
    name: str
    status: Status
    channel_ids: list[uuid.UUID]
    template: dict[str, str]
    media_id: uuid.UUID | None
    audience: dict[str, Any]
    audience_status: str
    audience_report: dict[str, Any]
    total: int
    starts_at: datetime | None
    window_start: str | None
    window_end: str | None
    avoid_repeats: bool
    failure_window: int
    failure_threshold: int
    pause_reason: str | None
    pause_message: str | None  # the reason, in the caller's language
    sent: int
    failed: int
    skipped: int
    unknown: int
    created_by: uuid.UUID | None
    created_at: datetime
    started_at: datetime | None
    paused_at: datetime | None
    finished_at: datetime | None


class PreviewIn(Request):
    template: Template
    customer_id: uuid.UUID | None = None  # none: a sample customer


class PreviewOut(Struct):
    messages: dict[str, str]  # by language


class RecipientOut(Struct):
    id: uuid.UUID
    customer_id: uuid.UUID | None
    phone: str
    status: RecipientStatus
    channel_id: uuid.UUID | None
    text: str | None
    error: str | None
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    replied_at: datetime | None


class ChannelResult(Struct):
    channel_id: uuid.UUID
    name: str | None
    sent: int
    failed: int
    unknown: int
    delivered: int
    read: int
    replied: int


class MinuteResult(Struct):
    minute: datetime
    sent: int
    failed: int


class FailureResult(Struct):
    reason: str
    count: int


class Rates(Struct):
    delivery: float | None  # of those sent
    read: float | None
    reply: float | None


class ResultsOut(Struct):
    campaign_id: uuid.UUID
    status: Status
    total: int
    counts: Counts
    rates: Rates
    channels: list[ChannelResult]
    per_minute: list[MinuteResult]
    failures: list[FailureResult]
    audience_report: dict[str, Any]


Gap = Annotated[float, Meta(ge=0, le=3600)]
Cap = Annotated[int, Meta(ge=1, le=100_000)]


class PacingIn(Request):
    """A channel's pacing; a field left out keeps its value, `null` removes a cap."""

    min_gap_seconds: Gap | UnsetType = UNSET
    jitter_seconds: Gap | UnsetType = UNSET
    hourly_cap: Cap | UnsetType | None = UNSET
    daily_cap: Cap | UnsetType | None = UNSET
    pause_every: Cap | UnsetType | None = UNSET
    pause_seconds: Annotated[float, Meta(ge=0, le=86_400)] | UnsetType = UNSET
    warmup_daily_caps: Annotated[list[Cap], Meta(max_length=60)] | UnsetType = UNSET


class PacingRulesOut(Struct):
    min_gap_seconds: float
    jitter_seconds: float
    hourly_cap: int | None
    daily_cap: int | None
    pause_every: int | None
    pause_seconds: float
    warmup_daily_caps: list[int]


class PacingOut(Struct):
    channel_id: uuid.UUID
    name: str
    kind: str
    rules: PacingRulesOut
    next_send_at: datetime | None
    sent_this_hour: int
    sent_today: int
    first_day: date | None
