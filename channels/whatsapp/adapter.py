"""The WhatsApp channel adapter: sends through the profile's session held by this process."""

from __future__ import annotations

from typing import ClassVar

from neonize.exc import NeonizeError
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import ContextInfo, ExtendedTextMessage, Message
from neonize.utils.enum import ReceiptType
from neonize.utils.jid import build_jid

from channels.adapters import ChannelError, OutboundMessage, SendResult, register_adapter
from channels.models import Channel
from channels.whatsapp.session import ProfileSession, sessions_of
from hub.runtime import current


def _jid_of(recipient: str):
    if "@" in recipient:
        user, server = recipient.split("@", 1)
        return build_jid(user, server)
    return build_jid(recipient.lstrip("+"))


class WhatsAppAdapter:
    kind: ClassVar[str] = "whatsapp"

    def _session(self, channel: Channel) -> ProfileSession:
        session = sessions_of(current()).get(channel.id)
        if session is None or session.client is None or session.state != "ready":
            raise ChannelError(f"profile {channel.name} is not connected in this process", retryable=True)
        return session

    async def start(self, channel: Channel) -> None:
        await sessions_of(current()).ensure(channel)

    async def stop(self, channel: Channel) -> None:
        await sessions_of(current()).release(channel.id)

    async def send(self, channel: Channel, message: OutboundMessage) -> SendResult:
        client = self._session(channel).client
        assert client is not None
        to = _jid_of(message.recipient)
        try:
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
                            stanzaID=message.reply_to_external_id, participant=str(to.User) + "@" + to.Server
                        ),
                    )
                )
            else:
                built = message.text or ""
            response = await client.send_message(to, built)
        except NeonizeError as error:
            raise ChannelError(f"whatsapp refused: {error}"[:400], retryable=True) from error
        return SendResult(external_id=response.ID)

    async def edit(self, channel: Channel, *, recipient: str, external_id: str, text: str) -> None:
        client = self._session(channel).client
        assert client is not None
        try:
            await client.edit_message(_jid_of(recipient), external_id, Message(conversation=text))
        except NeonizeError as error:
            raise ChannelError(str(error)[:400], retryable=False) from error

    async def delete(self, channel: Channel, *, recipient: str, external_id: str) -> None:
        session = self._session(channel)
        assert session.client is not None
        assert session.client.me is not None
        try:
            await session.client.revoke_message(_jid_of(recipient), session.client.me.JID, external_id)
        except NeonizeError as error:
            raise ChannelError(str(error)[:400], retryable=False) from error

    async def mark_read(self, channel: Channel, *, recipient: str, external_ids: list[str]) -> None:
        client = self._session(channel).client
        assert client is not None
        jid = _jid_of(recipient)
        try:
            await client.mark_read(*external_ids, chat=jid, sender=jid, receipt=ReceiptType.READ)
        except NeonizeError as error:
            raise ChannelError(str(error)[:400], retryable=False) from error


register_adapter(WhatsAppAdapter())
