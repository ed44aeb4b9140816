"""What campaigns publish: their public contract for the inbox."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

import msgspec
from msgspec import UNSET, UnsetType

from campaigns.schemas import ResultsOut
from hub.events import Event, event_type
from hub.realtime import SocketEvent, socket_event


class SentMessage(msgspec.Struct, frozen=True, kw_only=True):
    message_id: uuid.UUID  # the recipient's id
    customer_id: uuid.UUID
    channel_id: uuid.UUID
    external_id: str | None
    text: str | None
    media_id: uuid.UUID | None
    at: datetime


@event_type
class CampaignMessagesSent(Event, frozen=True, kw_only=True):
    """A batch of a campaign's messages went out; each belongs in its customer's conversation."""

    name: ClassVar[str] = "campaigns.messages_sent"
    campaign_id: uuid.UUID
    messages: list[SentMessage]


# What campaigns push to sockets (their audience: `hub.audience.campaign_readers`).


@socket_event
class CampaignProgress(SocketEvent, kw_only=True):
    """A running campaign's counts, at most every 0.4 s whatever the send rate."""

    name: ClassVar[str] = "campaignProgress"
    campaign_id: uuid.UUID
    current: int
    total: int
    sent: int
    failed: int
    skipped: int
    unknown: int
    remaining: int
    status: str


@socket_event
class CampaignCompleted(SocketEvent, kw_only=True):
    """No one is left to send to: the campaign's results."""

    name: ClassVar[str] = "campaignCompleted"
    campaign_id: uuid.UUID
    results: ResultsOut


@socket_event
class CampaignUpdated(SocketEvent, kw_only=True):
    """A campaign's status changed (scheduled, running, paused with its reason, cancelled), or its
    audience was counted (`audienceStatus` ready or failed, `total`, the `audience` report)."""

    name: ClassVar[str] = "campaignUpdated"
    campaign_id: uuid.UUID
    status: str
    reason: str | UnsetType = UNSET  # why it paused: manual, failures, channel_unreachable, ...
    details: dict[str, Any] | UnsetType = UNSET
    audience_status: str | UnsetType = UNSET
    total: int | UnsetType = UNSET
    audience: dict[str, Any] | UnsetType = UNSET
