"""The WhatsApp channel adapter: sends through the profile's session held by this process."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

import msgspec
from neonize.aioze.client import NewAClient
from neonize.exc import NeonizeError
from neonize.proto.Neonize_pb2 import JID
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import ContextInfo, ExtendedTextMessage, Message
from neonize.utils.enum import ReceiptType
from neonize.utils.jid import build_jid

from channels.adapters import ChannelError, OutboundMessage, SendResult, SentRecord, register_adapter
from channels.models import Channel
from channels.whatsapp.sessions import sessions_of
from hub.runtime import current


def _jid_of(recipient: str) -> JID:
    if "@" in recipient:
        user, server = recipient.split("@", 1)
        return build_jid(user, server)
    return build_jid(recipient.lstrip("+"))


class WhatsAppAdapter:
    """Every operation runs where the profile's session is: here, or routed to the process that
    holds the profile's lease."""

    kind: ClassVar[str] = "whatsapp"

    async def start(self, channel: Channel) -> None:
        await sessions_of(current()).ensure(channel)

    async def stop(self, channel: Channel) -> None:
        await sessions_of(current()).release(channel.id)

    async def send(self, channel: Channel, message: OutboundMessage) -> SendResult:
        answer = await self._on_holder(
            channel, "send", {"message": msgspec.to_builtins(message)}, finish_by=message.finish_by
        )
        return SendResult(external_id=str(answer))

    async def edit(self, channel: Channel, *, recipient: str, external_id: str, text: str) -> None:
        await self._on_holder(
            channel, "edit", {"recipient": recipient, "external_id": external_id, "text": text}
        )

    async def delete(self, channel: Channel, *, recipient: str, external_id: str) -> None:
        await self._on_holder(channel, "delete", {"recipient": recipient, "external_id": external_id})

    async def mark_read(self, channel: Channel, *, recipient: str, external_ids: list[str]) -> None:
        await self._on_holder(channel, "mark_read", {"recipient": recipient, "external_ids": external_ids})

    async def find_sent(self, channel: Channel, message_id: uuid.UUID) -> SentRecord | None:
        """WhatsApp keeps no record the hub may ask."""
        return None

    async def _on_holder(
        self, channel: Channel, operation: str, payload: dict[str, Any], finish_by: float | None = None
    ) -> Any:
        sessions = sessions_of(current())
        if sessions.get(channel.id) is not None or current().redis is None:
            return await run_here(channel, operation, payload)
        return await sessions.call_holder(channel, operation, payload, finish_by=finish_by)


def _ready_client(channel: Channel) -> NewAClient:
    session = sessions_of(current()).get(channel.id)
    if session is None or session.client is None or session.state != "ready":
        state = session.state if session is not None else channel.state
        raise ChannelError(f"profile {channel.name} is {state}", retryable=True)
    return session.client


async def run_here(channel: Channel, operation: str, payload: dict[str, Any]) -> Any:
    """Carry out one operation with the session this process holds."""
    client = _ready_client(channel)
    try:
        if operation == "send":
            return await _send(client, msgspec.convert(payload["message"], OutboundMessage))
        to = _jid_of(payload["recipient"])
        if operation == "edit":
            await client.edit_message(to, payload["external_id"], Message(conversation=payload["text"]))
        elif operation == "delete":
            await client.revoke_message(to, client.me.JID, payload["external_id"])
        elif operation == "mark_read":
            await client.mark_read(*payload["external_ids"], chat=to, sender=to, receipt=ReceiptType.READ)
        else:
            raise ChannelError(f"unknown operation {operation}", retryable=False)
    except NeonizeError as error:
        # A send that failed half-way may have reached WhatsApp all the same.
        sending = operation == "send"
        raise ChannelError(f"whatsapp refused: {error}"[:400], retryable=sending, in_doubt=sending) from error
    return None


async def _send(client: NewAClient, message: OutboundMessage) -> str:
    to = _jid_of(message.recipient)
    built: Message | str
    if message.attachments:
        attachment = message.attachments[0]
        caption = message.text or None
        if attachment.kind == "image":
            built = await client.build_image_message(attachment.data, caption=caption)
        elif attachment.kind == "video":
            built = await client.build_video_message(attachment.data, caption=caption)
        elif attachment.kind == "audio":
            built = await client.build_audio_message(attachment.data)
        else:
            built = await client.build_document_message(
                attachment.data,
                caption=caption,
                filename=attachment.filename,
                mimetype=attachment.content_type,
            )
    elif message.reply_to_external_id:
        built = Message(
            extendedTextMessage=ExtendedTextMessage(
                text=message.text or "",
                contextInfo=ContextInfo(
                    stanzaID=message.reply_to_external_id, participant=f"{to.User}@{to.Server}"
                ),
            )
        )
    else:
        built = message.text or ""
    response = await client.send_message(to, built)
    return str(response.ID)


register_adapter(WhatsAppAdapter())
