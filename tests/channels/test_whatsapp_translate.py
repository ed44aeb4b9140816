"""neonize's real protobuf events through the translation to the channel contract."""

from __future__ import annotations

import uuid
from typing import Any

from neonize.proto.Neonize_pb2 import JID, MessageInfo, MessageSource
from neonize.proto.Neonize_pb2 import Message as MessageEv
from neonize.proto.Neonize_pb2 import Receipt as ReceiptEv
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (
    ContextInfo,
    DocumentMessage,
    ExtendedTextMessage,
    FutureProofMessage,
    ImageMessage,
    Message,
    ReactionMessage,
)

from channels.whatsapp.translate import inbound_message, receipts

ORG, CHANNEL = uuid.uuid4(), uuid.uuid4()


def jid(user: str, server: str = "s.whatsapp.net") -> JID:
    return JID(User=user, Server=server, RawAgent=0, Device=0, Integrator=0, IsEmpty=False)


def event(
    message: Message,
    *,
    chat: JID | None = None,
    sender: JID | None = None,
    alt: JID | None = None,
    group: bool = False,
    from_me: bool = False,
    push_name: str = "Omar",
) -> MessageEv:
    chat = chat or jid("966501234567")
    source = MessageSource(Chat=chat, Sender=sender or chat, IsFromMe=from_me, IsGroup=group)
    if alt is not None:
        source.SenderAlt.CopyFrom(alt)
    info = MessageInfo(MessageSource=source, ID="3EB0ABCDEF", Pushname=push_name, Timestamp=1_790_000_000)
    return MessageEv(Info=info, Message=message)


async def no_download(_message: Any) -> bytes:
    raise AssertionError("nothing to download")


async def translate(ev: MessageEv, download: Any = no_download) -> Any:
    return await inbound_message(ev, organization_id=ORG, channel_id=CHANNEL, download=download)


async def test_plain_text_from_a_phone_number() -> None:
    inbound = await translate(event(Message(conversation="السلام عليكم")))
    assert inbound.text == "السلام عليكم"
    assert (inbound.sender, inbound.sender_is_phone, inbound.sender_name) == ("+966501234567", True, "Omar")
    assert inbound.external_id == "3EB0ABCDEF"
    assert inbound.kind == "text"
    assert inbound.sent_at.year == 2026


async def test_quoted_reply_keeps_the_quoted_id() -> None:
    message = Message(
        extendedTextMessage=ExtendedTextMessage(
            text="yes, that one", contextInfo=ContextInfo(stanzaID="QUOTED1")
        )
    )
    inbound = await translate(event(message))
    assert inbound.text == "yes, that one"
    assert inbound.reply_to_external_id == "QUOTED1"


async def test_image_with_caption_is_downloaded() -> None:
    downloaded: list[Any] = []

    async def download(message: Any) -> bytes:
        downloaded.append(message)
        return b"\xff\xd8\xff-jpeg-bytes"

    message = Message(imageMessage=ImageMessage(caption="receipt", mimetype="image/jpeg"))
    inbound = await translate(event(message), download)
    assert inbound.kind == "image"
    assert inbound.text == "receipt"
    assert inbound.attachments[0].content_type == "image/jpeg"
    assert inbound.attachments[0].data == b"\xff\xd8\xff-jpeg-bytes"
    assert len(downloaded) == 1


async def test_document_inside_its_caption_envelope() -> None:
    async def download(_message: Any) -> bytes:
        return b"%PDF-1.4"

    inner = Message(
        documentMessage=DocumentMessage(fileName="contract.pdf", mimetype="application/pdf", caption="signed")
    )
    message = Message(documentWithCaptionMessage=FutureProofMessage(message=inner))
    inbound = await translate(event(message), download)
    assert (inbound.kind, inbound.text, inbound.attachments[0].filename) == (
        "document",
        "signed",
        "contract.pdf",
    )


async def test_hidden_id_sender_is_resolved_to_the_phone_when_known() -> None:
    hidden = jid("123456789012345", "lid")
    resolved = await translate(
        event(Message(conversation="hi"), chat=hidden, sender=hidden, alt=jid("201001234567"))
    )
    assert (resolved.sender, resolved.sender_is_phone) == ("+201001234567", True)
    unresolved = await translate(event(Message(conversation="hi"), chat=hidden, sender=hidden))
    assert (unresolved.sender, unresolved.sender_is_phone) == ("123456789012345@lid", False)


async def test_groups_own_messages_and_reactions_are_ignored() -> None:
    assert (
        await translate(event(Message(conversation="hi all"), chat=jid("1203630", "g.us"), group=True))
        is None
    )
    assert await translate(event(Message(conversation="sent from the phone"), from_me=True)) is None
    assert await translate(event(Message(reactionMessage=ReactionMessage(text="👍")))) is None
    assert await translate(event(Message(conversation="status"), chat=jid("status", "broadcast"))) is None


def test_receipts_map_to_statuses() -> None:
    source = MessageSource(Chat=jid("966501234567"), Sender=jid("966501234567"))
    delivered = receipts(
        ReceiptEv(MessageSource=source, MessageIDs=["A", "B"], Type=ReceiptEv.DELIVERED),
        organization_id=ORG,
        channel_id=CHANNEL,
    )
    assert [(r.external_id, r.status) for r in delivered] == [("A", "delivered"), ("B", "delivered")]
    played = receipts(
        ReceiptEv(MessageSource=source, MessageIDs=["C"], Type=ReceiptEv.PLAYED),
        organization_id=ORG,
        channel_id=CHANNEL,
    )
    assert played[0].status == "read"
    assert (
        receipts(
            ReceiptEv(MessageSource=source, MessageIDs=["D"], Type=ReceiptEv.READ_SELF),
            organization_id=ORG,
            channel_id=CHANNEL,
        )
        == []
    )


def test_importing_neonize_leaves_the_root_logger_alone() -> None:
    import subprocess
    import sys

    probe = (
        "import logging; import channels.whatsapp.translate; root = logging.getLogger(); "
        "print(len(root.handlers), root.level)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["0", "30"]
