"""neonize's events, as the channel contract names them.

Pure translation, no I/O except the media download the caller passes in, so every rule here is
tested with real neonize protobuf objects.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from neonize.proto.Neonize_pb2 import JID
from neonize.proto.Neonize_pb2 import Message as MessageEv
from neonize.proto.Neonize_pb2 import Receipt as ReceiptEv

from channels.adapters import InboundAttachment, InboundMessage, Receipt, ReceiptStatus

log = structlog.get_logger(__name__)

PHONE_SERVER = "s.whatsapp.net"
HIDDEN_ID_SERVER = "lid"
Download = Callable[[Any], Awaitable[bytes]]

_RECEIPTS: dict[int, ReceiptStatus] = {
    ReceiptEv.DELIVERED: "delivered",
    ReceiptEv.READ: "read",
    ReceiptEv.PLAYED: "read",
    ReceiptEv.SERVER_ERROR: "failed",
}
# Which part of a WhatsApp message carries media, and what kind of media it is for the inbox.
_MEDIA_PARTS = (
    ("imageMessage", "image"),
    ("videoMessage", "video"),
    ("ptvMessage", "video"),
    ("audioMessage", "audio"),
    ("documentMessage", "document"),
    ("stickerMessage", "image"),
)


def phone_of(jid: JID) -> str | None:
    """E.164 of a phone-number JID; None for hidden ids (LID), groups and the rest."""
    if jid.Server == PHONE_SERVER and jid.User.isdigit():
        return f"+{jid.User}"
    return None


def sender_of(event: MessageEv) -> tuple[str, bool]:
    """(sender, is a phone) for a one-to-one chat, resolving a hidden id to its phone where given."""
    source = event.Info.MessageSource
    for jid in (source.Chat, source.Sender, source.SenderAlt):
        phone = phone_of(jid)
        if phone:
            return phone, True
    hidden = source.Chat if source.Chat.Server == HIDDEN_ID_SERVER else source.Sender
    return f"{hidden.User}@{hidden.Server}", False


def _unwrap(message: Any) -> Any:
    """The message inside the envelopes WhatsApp puts around some of them."""
    for wrapper in ("ephemeralMessage", "viewOnceMessage", "viewOnceMessageV2", "documentWithCaptionMessage"):
        if message.HasField(wrapper):
            return _unwrap(getattr(message, wrapper).message)
    return message


def _sent_at(event: MessageEv) -> datetime | None:
    stamp = event.Info.Timestamp
    if stamp <= 0:
        return None
    return datetime.fromtimestamp(stamp / 1000 if stamp > 10**12 else stamp, tz=UTC)


def ignored_reason(event: MessageEv) -> str | None:
    source = event.Info.MessageSource
    if source.IsGroup or source.Chat.Server == "g.us":
        return "group chat"
    if source.Chat.Server == "broadcast":
        return "status or broadcast"
    if source.IsFromMe:
        return "sent from the business phone itself"
    message = _unwrap(event.Message)
    if message.HasField("protocolMessage") or message.HasField("reactionMessage"):
        return "protocol or reaction"
    return None


async def inbound_message(
    event: MessageEv, *, organization_id: uuid.UUID, channel_id: uuid.UUID, download: Download
) -> InboundMessage | None:
    """The normalized inbound message, or None for what the inbox does not take (groups, say)."""
    reason = ignored_reason(event)
    if reason:
        log.info("whatsapp message ignored", reason=reason, message_id=event.Info.ID)
        return None
    message = _unwrap(event.Message)
    sender, is_phone = sender_of(event)
    text: str | None = message.conversation or None
    context = None
    kind = "text"
    attachments: tuple[InboundAttachment, ...] = ()
    if message.HasField("extendedTextMessage"):
        text = message.extendedTextMessage.text or text
        context = message.extendedTextMessage.contextInfo
    for part_name, part_kind in _MEDIA_PARTS:
        if message.HasField(part_name):
            part = getattr(message, part_name)
            kind = part_kind
            text = getattr(part, "caption", "") or text
            context = part.contextInfo
            data = await download(message)
            attachments = (
                InboundAttachment(
                    content_type=part.mimetype or "application/octet-stream",
                    filename=getattr(part, "fileName", "") or None,
                    data=data,
                ),
            )
            break
    if text is None and not attachments:
        log.info("whatsapp message of an unsupported kind ignored", message_id=event.Info.ID)
        return None
    quoted = context.stanzaID if context is not None and context.stanzaID else None
    return InboundMessage(
        organization_id=organization_id,
        channel_id=channel_id,
        external_id=event.Info.ID,
        sender=sender,
        sender_is_phone=is_phone,
        sender_name=event.Info.Pushname or None,
        text=text,
        kind=kind,
        attachments=attachments,
        reply_to_external_id=quoted,
        sent_at=_sent_at(event),
    )


def receipts(event: ReceiptEv, *, organization_id: uuid.UUID, channel_id: uuid.UUID) -> list[Receipt]:
    status = _RECEIPTS.get(event.Type)
    if status is None or event.MessageSource.IsGroup:
        return []
    return [
        Receipt(organization_id=organization_id, channel_id=channel_id, external_id=message_id, status=status)
        for message_id in event.MessageIDs
    ]
