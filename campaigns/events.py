"""What campaigns publish: their public contract for the inbox."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar

import msgspec

from hub.events import Event, event_type


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
