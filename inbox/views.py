"""What the inbox shows: messages and conversations as the API and the sockets carry them, and
who hears of a conversation (everyone who reads chats, but agents only of their own)."""

from __future__ import annotations

import uuid

import structlog
from sqlalchemy import select

from crm.models import Customer
from hub import events, storage
from hub.audience import chat_readers
from hub.db import HubAsyncSession
from hub.models import Media
from hub.realtime import SocketEvent, push
from hub.runtime import current
from inbox.events import ConversationUpdated, MessageStatusChanged, MessageUpdated
from inbox.models import Conversation, ConversationLabel, Label, Message, MessageAttachment
from inbox.schemas import ConversationOut, CustomerBrief, MessageOut

log = structlog.get_logger(__name__)

# Receipts only move a message forward; "failed" can come at any point before "read".
STATUS_ORDER = {"queued": 0, "sending": 1, "sent": 2, "delivered": 3, "read": 4}


async def attachments_of(
    session: HubAsyncSession, message_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[Media]]:
    """The media of many messages in one query, in their order."""
    found: dict[uuid.UUID, list[Media]] = {}
    if not message_ids:
        return found
    rows = await session.execute(
        select(MessageAttachment.message_id, Media)
        .join(Media, Media.id == MessageAttachment.media_id)
        .where(MessageAttachment.message_id.in_(message_ids))
        .order_by(MessageAttachment.message_id, MessageAttachment.position)
    )
    for message_id, media in rows:
        found.setdefault(message_id, []).append(media)
    return found


async def message_with_media(session: HubAsyncSession, message: Message) -> MessageOut:
    return message_out(message, (await attachments_of(session, [message.id])).get(message.id, []))


def message_out(message: Message, media: list[Media]) -> MessageOut:
    deleted = message.deleted_at is not None
    return MessageOut(
        id=message.id,
        conversation_id=message.conversation_id,
        direction=message.direction,
        kind=message.kind,
        text=None if deleted else message.text,
        status=message.status,
        external_id=message.external_id,
        sender_user_id=message.sender_user_id,
        reply_to_id=message.reply_to_id,
        private=message.private,
        failure_reason=message.failure_reason,
        created_at=message.created_at,
        edited_at=message.edited_at,
        deleted_at=message.deleted_at,
        attachments=[] if deleted else [storage.describe(current().settings, m) for m in media],
        by_assistant=bool(message.by_assistant),
    )


async def labels_of(
    session: HubAsyncSession, conversation_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    found: dict[uuid.UUID, list[str]] = {}
    if not conversation_ids:
        return found
    rows = await session.execute(
        select(ConversationLabel.conversation_id, Label.name)
        .join(Label, Label.id == ConversationLabel.label_id)
        .where(ConversationLabel.conversation_id.in_(conversation_ids))
        .order_by(Label.name)
    )
    for conversation_id, name in rows:
        found.setdefault(conversation_id, []).append(name)
    return found


async def conversation_view(
    session: HubAsyncSession, conversation: Conversation, customer: Customer
) -> ConversationOut:
    labels = (await labels_of(session, [conversation.id])).get(conversation.id, [])
    return conversation_out(conversation, customer, labels)


async def conversation_views(
    session: HubAsyncSession, rows: list[tuple[Conversation, Customer]]
) -> list[ConversationOut]:
    labels = await labels_of(session, [conversation.id for conversation, _ in rows])
    return [conversation_out(c, customer, labels.get(c.id, [])) for c, customer in rows]


def conversation_out(conversation: Conversation, customer: Customer, labels: list[str]) -> ConversationOut:
    return ConversationOut(
        id=conversation.id,
        channel_id=conversation.channel_id,
        customer=CustomerBrief(id=customer.id, name=customer.name, phone=customer.phone),
        status=conversation.status,
        snoozed_until=conversation.snoozed_until,
        assignee_id=conversation.assignee_id,
        last_message_at=conversation.last_message_at,
        last_message_preview=conversation.last_message_preview,
        unread_count=conversation.unread_count,
        labels=labels,
        created_at=conversation.created_at,
    )


def push_to_audience(session: HubAsyncSession, conversation: Conversation, message: SocketEvent) -> None:
    """To everyone who may see the conversation: the roles that read every chat, and its assignee."""
    push(session, message, chat_readers(conversation.assignee_id))


async def push_conversation(session: HubAsyncSession, conversation: Conversation, customer: Customer) -> None:
    """`conversationUpdated` with the conversation as it is now, to everyone who may see it."""
    push_to_audience(
        session,
        conversation,
        ConversationUpdated(
            chat_id=conversation.id, conversation=await conversation_view(session, conversation, customer)
        ),
    )


def message_preview(text: str | None, kind: str) -> str:
    return (text or f"[{kind}]")[:200]


async def announce_status(session: HubAsyncSession, conversation: Conversation, message: Message) -> None:
    await events.publish(
        session,
        MessageStatusChanged(
            organization_id=conversation.organization_id,
            message_id=message.id,
            conversation_id=conversation.id,
            customer_id=conversation.customer_id,
            status=message.status,
        ),
    )
    push_to_audience(
        session,
        conversation,
        MessageUpdated(chat_id=conversation.id, message=await message_with_media(session, message)),
    )
