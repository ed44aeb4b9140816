"""Request and response bodies of the channels API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

from hub.schemas import Request

WebhookUrl = Annotated[str, Meta(max_length=2000, pattern=r"^https?://[^\s]+$")]


class CreateChannelRequest(Request):
    type: Literal["api"]
    name: Annotated[str, Meta(min_length=1, max_length=120)]
    webhook_url: WebhookUrl


class ChannelOut(Struct):
    id: uuid.UUID
    type: str
    name: str
    state: str
    last_error: str | None
    inbound_url: str | None
    receipts_url: str | None
    webhook_url: str | None
    created_at: datetime


class ChannelCreatedOut(Struct):
    id: uuid.UUID
    type: str
    name: str
    state: str
    inbound_url: str
    receipts_url: str
    webhook_url: str
    # Shown once, here: it signs both directions.
    secret: str


class ApiAttachment(Request):
    content_type: Annotated[str, Meta(min_length=3, max_length=100)]
    filename: Annotated[str, Meta(max_length=255)] | None = None
    url: Annotated[str, Meta(max_length=2000, pattern=r"^https?://[^\s]+$")] | None = None
    data_base64: str | None = None


class ApiInbound(Request):
    external_id: Annotated[str, Meta(min_length=1, max_length=200)]
    sender: Annotated[str, Meta(min_length=1, max_length=200)] = msgspec.field(name="from")
    name: Annotated[str, Meta(max_length=200)] | None = None
    text: Annotated[str, Meta(max_length=4096)] | None = None
    attachments: Annotated[list[ApiAttachment], Meta(max_length=10)] = msgspec.field(default_factory=list)
    reply_to: Annotated[str, Meta(max_length=200)] | None = None


class ApiReceipt(Request):
    external_id: Annotated[str, Meta(min_length=1, max_length=200)]
    status: Literal["delivered", "read", "failed"]
    reason: Annotated[str, Meta(max_length=500)] | None = None


class InboundAccepted(Struct):
    message_id: uuid.UUID
    conversation_id: uuid.UUID


class ProfileIn(Request):
    name: Annotated[str, Meta(min_length=1, max_length=120)]


class QrOut(Struct):
    code: str
    svg: str


class ProfileOut(Struct):
    id: uuid.UUID
    name: str
    state: str
    last_error: str | None
    phone: str | None
    paired: bool
    qr: QrOut | None
    state_changed_at: datetime | None


class ConnectRequest(Request):
    profile_id: uuid.UUID
    # How long to wait for the first QR code (or for the stored session to come back).
    wait_seconds: Annotated[float, Meta(ge=0, le=30)] = 10


class PairPhoneRequest(Request):
    phone: Annotated[str, Meta(min_length=6, max_length=20)]


class PairCodeOut(Struct):
    code: str
