"""The one interface every channel kind implements, the normalized traffic, and the registry.

Adapters translate: a channel's own events become `InboundMessage`, `Receipt` and `SessionState`;
an `OutboundMessage` becomes whatever the channel speaks. They hold no business rules. What the
packages above register (the inbox's sink for what arrives, receipt listeners) is `channels.hooks`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timedelta
from typing import ClassVar, Literal, Protocol

import msgspec

from channels.models import Channel
from hub.i18n import N_, Term
from hub.storage import IncomingFile

ReceiptStatus = Literal["sent", "delivered", "read", "failed"]
SessionStateName = Literal["disconnected", "connecting", "qr", "ready", "logged_out"]
STATE_NAMES = {
    "disconnected": Term(N_("disconnected")),
    "connecting": Term(N_("connecting")),
    "qr": Term(N_("waiting for the QR code")),
    "ready": Term(N_("ready")),
    "logged_out": Term(N_("logged out")),
}


class InboundAttachment(msgspec.Struct, frozen=True, kw_only=True):
    content_type: str  # as the sender declared it; the hub decides from the bytes
    filename: str | None = None
    data: bytes | None = None
    # Or a file already received into the media store's incoming area (large ones, streamed).
    incoming: IncomingFile | None = None


class InboundMessage(msgspec.Struct, frozen=True, kw_only=True):
    organization_id: uuid.UUID
    channel_id: uuid.UUID
    external_id: str
    sender: str  # E.164 when it is a phone number, else the channel's own id of the sender
    sender_is_phone: bool
    sender_name: str | None = None
    text: str | None = None
    kind: str = "text"  # text, image, audio, video, document
    attachments: tuple[InboundAttachment, ...] = ()
    reply_to_external_id: str | None = None
    sent_at: datetime | None = None


class StoredInbound(msgspec.Struct, frozen=True):
    message_id: uuid.UUID
    conversation_id: uuid.UUID
    created: bool


class Receipt(msgspec.Struct, frozen=True, kw_only=True):
    organization_id: uuid.UUID
    channel_id: uuid.UUID
    external_id: str
    status: ReceiptStatus
    reason: str | None = None


class SessionState(msgspec.Struct, frozen=True, kw_only=True):
    organization_id: uuid.UUID
    channel_id: uuid.UUID
    state: SessionStateName
    detail: str | None = None


class OutboundAttachment(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    content_type: str
    filename: str | None
    data: bytes
    url: str | None = None  # an expiring link, when the hub knows its public address


class OutboundMessage(msgspec.Struct, frozen=True, kw_only=True):
    message_id: uuid.UUID  # the channel receives it with every send, so it can drop a repeat
    conversation_id: uuid.UUID | None  # none for a campaign's first message to someone
    recipient: str
    text: str | None
    kind: str = "text"
    attachments: tuple[OutboundAttachment, ...] = ()
    reply_to_external_id: str | None = None
    # Unix time by which the send is over: it is not begun after it, and given up at it. Whoever
    # settles a send left in doubt waits until then, so it never races a send still under way.
    finish_by: float | None = None


class SendResult(msgspec.Struct, frozen=True):
    external_id: str


class ChannelError(Exception):
    """The channel refused or could not be reached; `retryable` says whether trying later may help,
    `in_doubt` that the message may have gone out all the same (the answer was lost)."""

    def __init__(self, reason: str, *, retryable: bool, in_doubt: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.in_doubt = in_doubt


# Whoever settles a send left in doubt waits this long past its time to finish, so the sender
# has written what it learnt by then.
SETTLE_MARGIN = timedelta(seconds=10)
TOO_LATE = "the send was not begun: its time to finish had passed"
NOT_FINISHED = "the send did not finish in time: it may have reached the channel"


def seconds_left(message: OutboundMessage) -> float | None:
    """What is left of the message's time; a send whose time is up is refused unbegun (surely not
    sent, so it may be tried again)."""
    if message.finish_by is None:
        return None
    left = message.finish_by - time.time()
    if left <= 0:
        raise ChannelError(TOO_LATE, retryable=True)
    return left


async def send_message(channel: Channel, message: OutboundMessage) -> SendResult:
    """Send through the channel's adapter, over by the message's `finish_by` whatever the adapter
    does: a send cut off then may have gone out, so it is in doubt."""
    adapter = adapter_for(channel.kind)
    left = seconds_left(message)
    if left is None:
        return await adapter.send(channel, message)
    try:
        async with asyncio.timeout(left):
            return await adapter.send(channel, message)
    except TimeoutError as error:
        raise ChannelError(NOT_FINISHED, retryable=True, in_doubt=True) from error


class SentRecord(msgspec.Struct, frozen=True):
    """What a channel's own record says of a message id: whether it arrived, and under which id."""

    found: bool
    external_id: str | None = None


class ChannelAdapter(Protocol):
    kind: ClassVar[str]

    async def start(self, channel: Channel) -> None: ...

    async def stop(self, channel: Channel) -> None: ...

    async def send(self, channel: Channel, message: OutboundMessage) -> SendResult: ...

    async def edit(self, channel: Channel, *, recipient: str, external_id: str, text: str) -> None: ...

    async def delete(self, channel: Channel, *, recipient: str, external_id: str) -> None: ...

    async def mark_read(self, channel: Channel, *, recipient: str, external_ids: list[str]) -> None: ...

    async def find_sent(self, channel: Channel, message_id: uuid.UUID) -> SentRecord | None:
        """Ask the channel whether a message id reached it; None: the channel cannot tell."""
        ...


_adapters: dict[str, ChannelAdapter] = {}


def register_adapter(adapter: ChannelAdapter) -> None:
    _adapters[adapter.kind] = adapter


def adapter_for(kind: str) -> ChannelAdapter:
    try:
        return _adapters[kind]
    except KeyError:
        raise LookupError(f"no adapter for channel kind {kind!r}") from None
