"""Inbox rules: storing what customers send, replies, delivery, receipts, assignment and access."""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import msgspec
import structlog
from msgspec import UNSET
from sqlalchemy import Select, and_, bindparam, delete, func, insert, inspect, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from campaigns.events import CampaignMessagesSent
from channels.adapters import (
    SETTLE_MARGIN,
    STATE_NAMES,
    ChannelError,
    InboundMessage,
    OutboundAttachment,
    OutboundMessage,
    Receipt,
    SendResult,
    SentRecord,
    StoredInbound,
    adapter_for,
    send_message,
)
from channels.models import Channel
from crm.models import Customer, CustomerIdentity
from crm.services import asks_to_opt_out, customer_for_sender, phone_owner, record_activity
from hub import events, storage
from hub.auth import CurrentUser
from hub.db import Base, HubAsyncSession, id_at, insert_for, new_id, one_of, utcnow
from hub.errors import Conflict, Forbidden, InvalidInput, NotFound
from hub.i18n import N_, Term, translate
from hub.models import Media, Organization, User, Watermark
from hub.permissions import can, roles_with
from hub.realtime import push_after_commit
from hub.runtime import Runtime, current
from hub.services import assigned_to, count_usage
from hub.tasks import kick, schedule
from inbox.events import (
    ConversationAssigned,
    ConversationStarted,
    CustomersWrote,
    CustomerWrote,
    MessageReceived,
    MessageStatusChanged,
    ReplyQueued,
)
from inbox.models import (
    CannedResponse,
    Conversation,
    ConversationLabel,
    InboxSettings,
    Label,
    Message,
    MessageAttachment,
)
from inbox.schemas import ConversationOut, ConversationUpdate, CustomerBrief, MessageOut
from tickets.events import PublicReplyWritten

log = structlog.get_logger(__name__)

# Receipts only move a message forward; "failed" can come at any point before "read".
STATUS_ORDER = {"queued": 0, "sending": 1, "sent": 2, "delivered": 3, "read": 4}
# Retries of a reply the channel could not take: about six hours in all, then it is failed.
RETRY_DELAYS = [10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 3600, 3600, 3600, 3600]


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


# Who may see a conversation's events: every role that reads chats, except agents, who see only
# the conversations assigned to them.
ROLES_SEEING_ALL = tuple(role for role in roles_with("whatsapp", "read") if role != "agent")


def push_to_audience(session: HubAsyncSession, conversation: Conversation, event: str, data: Any) -> None:
    push_after_commit(
        session,
        event,
        data,
        roles=ROLES_SEEING_ALL,
        user_ids=[conversation.assignee_id] if conversation.assignee_id else [],
    )


async def push_conversation(session: HubAsyncSession, conversation: Conversation, customer: Customer) -> None:
    """`conversationUpdated` with the conversation as it is now, to everyone who may see it."""
    push_to_audience(
        session,
        conversation,
        "conversationUpdated",
        {
            "chatId": str(conversation.id),
            "conversation": await conversation_view(session, conversation, customer),
        },
    )


class _Columns(dict[type, list[tuple[Any, Any]]]):
    """Per mapped class, its (attribute, column) pairs; worked out once, on first use."""

    def __missing__(self, cls: type) -> list[tuple[Any, Any]]:
        mapper = inspect(cls)
        found = self[cls] = [(attribute, attribute.columns[0]) for attribute in mapper.column_attrs]
        return found


_COLUMNS = _Columns()


def _preview(text: str | None, kind: str) -> str:
    return (text or f"[{kind}]")[:200]


# Storing what arrives


async def store_inbound(runtime: Runtime, inbound: InboundMessage) -> StoredInbound:
    """Commit an inbound message before anyone acknowledges it; a repeated delivery is stored once.

    The common case, a known sender in an existing conversation, costs one read (customer,
    conversation and its labels together) and two writes (the message, the conversation), as
    plain statements: the busiest path in the hub skips the unit of work, which costs more than
    all three. Every statement names the organization, and on PostgreSQL row security applies.
    """
    for _attempt in range(3):
        async with runtime.db.session(inbound.organization_id) as session:
            if inbound.attachments:
                # Media files are written before the row: look for a repeat first, so it writes none.
                stored = await _stored_already(session, inbound)
                if stored is not None:
                    return stored
            customer, conversation, labels = await _sender_and_conversation(session, inbound)
            if customer is None:
                customer = await customer_for_sender(
                    session,
                    channel_id=inbound.channel_id,
                    sender=inbound.sender,
                    sender_is_phone=inbound.sender_is_phone,
                    display_name=inbound.sender_name,
                )
            conversation_created = conversation is None
            if conversation is None:
                conversation, conversation_created = await _start_conversation(
                    session, customer.id, inbound.channel_id
                )
                session.expunge(conversation)  # from here on it changes through the statement below
            reply_to_id = None
            if inbound.reply_to_external_id:
                reply_to_id = await session.scalar(
                    select(Message.id).where(
                        Message.channel_id == inbound.channel_id,
                        Message.external_id == inbound.reply_to_external_id,
                    )
                )
            media = [
                await storage.save_media(
                    session,
                    runtime.settings,
                    data=a.data or b"",
                    incoming=a.incoming,
                    declared_type=a.content_type,
                    filename=a.filename,
                )
                for a in inbound.attachments
            ]
            changes: dict[str, Any] = {}
            if conversation.status in ("resolved", "snoozed"):
                conversation.status, conversation.snoozed_until = "open", None  # a new message reopens it
                changes |= {"status": "open", "snoozed_until": None}
            if conversation.assignee_id is None:
                await _assign_in_turn(runtime, session, conversation)
                if conversation.assignee_id is not None:
                    changes["assignee_id"] = conversation.assignee_id
            now = utcnow()
            message = Message(
                id=new_id(),
                organization_id=inbound.organization_id,
                conversation_id=conversation.id,
                channel_id=inbound.channel_id,
                direction="inbound",
                kind=media[0].kind if media else inbound.kind,
                text=inbound.text,
                status="received",
                external_id=inbound.external_id,
                reply_to_id=reply_to_id,
                private=False,
                send_attempts=0,
                created_at=now,
                updated_at=now,
            )
            statements = _inbound_statements()
            connection = await session.connection()
            try:
                await connection.execute(statements["insert_message"], _row_values(message))
            except IntegrityError:
                # The same delivery arrived before (or at the same moment): answer with the first.
                await session.rollback()
                stored = await _stored_already(session, inbound)
                if stored is not None:
                    return stored
                continue
            for position, item in enumerate(media):
                session.add(MessageAttachment(message_id=message.id, media_id=item.id, position=position))
            if changes:  # seldom: a reopened or newly assigned conversation
                conversations = Conversation.__table__
                await connection.execute(
                    update(conversations)
                    .where(
                        conversations.c.id == conversation.id,
                        conversations.c.organization_id == inbound.organization_id,
                    )
                    .values(**changes)
                )
            conversation.last_message_at = now
            conversation.last_message_preview = _preview(inbound.text, message.kind)
            conversation.unread_count = await connection.scalar(
                statements["touch_conversation"],
                {
                    "conversation": conversation.id,
                    "org": inbound.organization_id,
                    "at": now,
                    "preview": conversation.last_message_preview,
                },
            )
            if not customer.opted_out and await asks_to_opt_out(session, inbound.text):
                await _opt_out(session, conversation, customer, message)
            await events.publish(
                session,
                MessageReceived(
                    organization_id=inbound.organization_id,
                    message_id=message.id,
                    conversation_id=conversation.id,
                    customer_id=customer.id,
                    channel_id=inbound.channel_id,
                    conversation_created=conversation_created,
                    text=inbound.text,
                    assignee_id=conversation.assignee_id,
                ),
            )
            if conversation_created:
                await events.publish(
                    session,
                    ConversationStarted(
                        organization_id=inbound.organization_id,
                        conversation_id=conversation.id,
                        customer_id=customer.id,
                        channel_id=inbound.channel_id,
                        message_id=message.id,
                        at=now,
                    ),
                )
            push_to_audience(
                session,
                conversation,
                "newMessage",
                {
                    "chatId": str(conversation.id),
                    "message": message_out(message, media),
                    "conversation": conversation_out(conversation, customer, labels),
                },
            )
            await session.commit()
            return StoredInbound(message_id=message.id, conversation_id=conversation.id, created=True)
    raise RuntimeError("inbound message could not be stored")


async def _opt_out(
    session: HubAsyncSession, conversation: Conversation, customer: Customer, message: Message
) -> None:
    """The customer wrote an opt-out keyword: no more campaigns for them, a timeline entry, and a
    confirmation in their language, all in the transaction that stores their message."""
    await session.execute(
        update(Customer)
        .where(Customer.id == customer.id)
        .values(opted_out=True)
        .execution_options(synchronize_session=False)
    )
    await record_activity(
        session, customer.id, "opted_out", {"message_id": str(message.id)}, key=f"opt_out:{message.id}"
    )
    language = customer.language or await session.scalar(select(Organization.default_language)) or "ar"
    text = translate(language, N_("You are unsubscribed and will receive no more campaign messages from us."))
    confirmation = Message(
        id=new_id(),
        conversation_id=conversation.id,
        channel_id=conversation.channel_id,
        direction="outbound",
        kind="text",
        text=text,
        status="queued",
        private=False,
        send_attempts=0,
    )
    session.add(confirmation)
    await session.flush()
    push_to_audience(
        session,
        conversation,
        "messageSent",
        {"chatId": str(conversation.id), "message": message_out(confirmation, [])},
    )
    organization_id, confirmation_id = conversation.organization_id, confirmation.id

    async def hand_to_channel() -> None:
        await kick(
            "inbox.deliver_message", organization_id=str(organization_id), message_id=str(confirmation_id)
        )

    session.after_commit(hand_to_channel)


def _row_values(row: Base) -> dict[str, Any]:
    """The column values of a new object, for a plain INSERT of it."""
    return {column.name: getattr(row, attribute.key) for attribute, column in _COLUMNS[type(row)]}


async def _stored_already(session: HubAsyncSession, inbound: InboundMessage) -> StoredInbound | None:
    existing = (
        await session.execute(
            select(Message.id, Message.conversation_id).where(
                Message.channel_id == inbound.channel_id, Message.external_id == inbound.external_id
            )
        )
    ).first()
    if existing is None:
        return None
    return StoredInbound(message_id=existing.id, conversation_id=existing.conversation_id, created=False)


@functools.cache
def _inbound_statements() -> dict[str, Any]:
    """The plain statements of the inbound path, built once: building them costs more than running
    them. Each names the organization; on PostgreSQL row security applies as well."""
    customers, conversations = Customer.__table__, Conversation.__table__
    links, labels, identities = ConversationLabel.__table__, Label.__table__, CustomerIdentity.__table__
    org = bindparam("org", type_=customers.c.organization_id.type)
    channel = bindparam("channel", type_=conversations.c.channel_id.type)
    sender = bindparam("sender", type_=customers.c.phone.type)
    lookup = (
        select(customers, *(c.label(f"v_{c.name}") for c in conversations.c), labels.c.name.label("label"))
        .select_from(
            customers.outerjoin(
                conversations,
                and_(
                    conversations.c.customer_id == customers.c.id,
                    conversations.c.channel_id == channel,
                    conversations.c.organization_id == org,
                ),
            )
            .outerjoin(
                links, and_(links.c.conversation_id == conversations.c.id, links.c.organization_id == org)
            )
            .outerjoin(labels, and_(labels.c.id == links.c.label_id, labels.c.organization_id == org))
        )
        .where(customers.c.organization_id == org)
        .order_by(labels.c.name)
    )
    by_identity = select(identities.c.customer_id).where(
        identities.c.organization_id == org,
        identities.c.channel_id == channel,
        identities.c.external_id == bindparam("sender", type_=identities.c.external_id.type),
    )
    return {
        "by_phone": lookup.where(customers.c.id == phone_owner(sender, org)),
        "by_identity": lookup.where(customers.c.id.in_(by_identity)),
        "insert_message": insert(Message.__table__),
        "touch_conversation": update(conversations)
        .where(
            conversations.c.id == bindparam("conversation", type_=conversations.c.id.type),
            conversations.c.organization_id == org,
        )
        # Counted in the database, so messages arriving together all add up.
        .values(
            unread_count=conversations.c.unread_count + 1,
            last_message_at=bindparam("at", type_=conversations.c.last_message_at.type),
            updated_at=bindparam("at", type_=conversations.c.updated_at.type),
            last_message_preview=bindparam("preview", type_=conversations.c.last_message_preview.type),
        )
        .returning(conversations.c.unread_count),
    }


async def _sender_and_conversation(
    session: HubAsyncSession, inbound: InboundMessage
) -> tuple[Customer | None, Conversation | None, list[str]]:
    """The sender's customer, their conversation on this channel and its labels, in one plain query.

    The objects returned are snapshots, not loaded into the session: changes to them are written
    by explicit statements.
    """
    statements = _inbound_statements()
    rows = (
        await (await session.connection()).execute(
            statements["by_phone" if inbound.sender_is_phone else "by_identity"],
            {"org": inbound.organization_id, "channel": inbound.channel_id, "sender": inbound.sender},
        )
    ).all()
    if not rows:
        return None, None, []
    first = rows[0]._mapping
    customer = Customer(**{attribute.key: first[column] for attribute, column in _COLUMNS[Customer]})
    conversation = None
    if first["v_id"] is not None:
        conversation = Conversation(
            **{attribute.key: first[f"v_{column.name}"] for attribute, column in _COLUMNS[Conversation]}
        )
    return customer, conversation, [row.label for row in rows if row.label is not None]


async def _start_conversation(
    session: HubAsyncSession, customer_id: uuid.UUID, channel_id: uuid.UUID
) -> tuple[Conversation, bool]:
    """A new conversation, or the one a concurrent first message has just started."""
    try:
        async with session.begin_nested():
            conversation = Conversation(customer_id=customer_id, channel_id=channel_id, status="open")
            session.add(conversation)
            await session.flush()
        return conversation, True
    except IntegrityError:
        found = await session.scalar(
            select(Conversation).where(
                Conversation.customer_id == customer_id, Conversation.channel_id == channel_id
            )
        )
        assert found is not None
        return found, False


async def apply_receipt(runtime: Runtime, receipt: Receipt) -> bool:
    """Move an outbound message forward (sent → delivered → read) or mark it failed."""
    async with runtime.db.session(receipt.organization_id) as session:
        message = await session.scalar(
            select(Message).where(
                Message.channel_id == receipt.channel_id,
                Message.external_id == receipt.external_id,
                Message.direction == "outbound",
            )
        )
        if message is None:
            return False
        if receipt.status == "failed":
            if message.status == "read":
                return True
            message.status, message.failure_reason = (
                "failed",
                (receipt.reason or "failed on the channel")[:500],
            )
        elif STATUS_ORDER.get(receipt.status, 0) > STATUS_ORDER.get(message.status, -1):
            message.status = receipt.status
        else:
            return True  # late or repeated receipt: nothing changes
        conversation = await session.get_one(Conversation, message.conversation_id)
        await _announce_status(session, conversation, message)
        await session.commit()
    return True


async def _announce_status(session: HubAsyncSession, conversation: Conversation, message: Message) -> None:
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
        "messageUpdated",
        {"chatId": str(conversation.id), "message": await message_with_media(session, message)},
    )


# Reading, with the agents' "assigned only" rule


def visible_conversations(user: CurrentUser) -> Select[Any]:
    statement = select(Conversation, Customer).join(Customer, Customer.id == Conversation.customer_id)
    if user.role == "agent":
        statement = statement.where(Conversation.assignee_id == user.id)
    return statement


async def entries_about_hidden_conversations(
    session: HubAsyncSession, reader: CurrentUser, entries: list[Any]
) -> set[uuid.UUID]:
    """Of these timeline entries (each naming `conversation_id`), those the reader may not see."""
    if reader.role != "agent":
        return set()
    named: dict[uuid.UUID, uuid.UUID | None] = {}
    for entry in entries:
        try:
            named[entry.id] = uuid.UUID(str(entry.details.get("conversation_id")))
        except ValueError:
            named[entry.id] = None
    wanted = {conversation for conversation in named.values() if conversation is not None}
    visible = (
        set(
            await session.scalars(
                select(Conversation.id).where(
                    Conversation.id.in_(wanted), Conversation.assignee_id == reader.id
                )
            )
        )
        if wanted
        else set()
    )
    return {entry for entry, conversation in named.items() if conversation not in visible}


async def conversation_for_user(
    session: HubAsyncSession, user: CurrentUser, conversation_id: uuid.UUID
) -> tuple[Conversation, Customer]:
    row = (
        await session.execute(visible_conversations(user).where(Conversation.id == conversation_id))
    ).first()
    if row is None:
        raise NotFound()  # another organization's, or not assigned to this agent
    return row[0], row[1]


def conversation_cursor(moment: datetime, conversation_id: uuid.UUID) -> str:
    """The cursor of the page after the conversation with this last activity and id."""
    encoded = base64.urlsafe_b64encode(msgspec.json.encode([moment.isoformat(), str(conversation_id)]))
    return encoded.decode().rstrip("=")


def _decode_position(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        moment, identifier = msgspec.json.decode(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(moment), uuid.UUID(identifier)
    except (binascii.Error, ValueError, TypeError, msgspec.DecodeError):
        raise InvalidInput(N_("The cursor is not valid."), field="cursor") from None


async def list_conversations(
    session: HubAsyncSession,
    user: CurrentUser,
    *,
    status: str | None,
    assignee: str | None,
    channel_id: uuid.UUID | None,
    query: str | None,
    cursor: str | None,
    limit: int,
    label: str | None = None,
    changed_since: datetime | None = None,
) -> tuple[list[tuple[Conversation, Customer]], str | None]:
    """Most recent activity first, by a cursor on (last activity, id); `changed_since` keeps the
    conversations with a message or a change since then (a client catching up in one listing)."""
    statement = visible_conversations(user)
    if changed_since is not None:
        statement = statement.where(
            or_(Conversation.last_message_at >= changed_since, Conversation.updated_at >= changed_since)
        )
    if status:
        statement = statement.where(Conversation.status == status)
    if assignee:
        statement = statement.where(assigned_to(Conversation.assignee_id, assignee, user))
    if channel_id:
        statement = statement.where(Conversation.channel_id == channel_id)
    if label:
        statement = statement.where(
            Conversation.id.in_(
                select(ConversationLabel.conversation_id)
                .join(Label, Label.id == ConversationLabel.label_id)
                .where(Label.name == label)
            )
        )
    if query:
        pattern = f"%{query.strip()}%"
        statement = statement.where(
            or_(
                Customer.name.ilike(pattern),
                Customer.phone.ilike(pattern),
                Conversation.last_message_preview.ilike(pattern),
            )
        )
    activity = Conversation.last_message_at
    if cursor:
        moment, identifier = _decode_position(cursor)
        # A row comparison, which the (organization, last activity, id) index serves directly.
        statement = statement.where(tuple_(activity, Conversation.id) < tuple_(moment, identifier))
    statement = statement.order_by(activity.desc(), Conversation.id.desc()).limit(limit + 1)
    rows = [(row[0], row[1]) for row in (await session.execute(statement)).all()]
    more = len(rows) > limit
    rows = rows[:limit]
    if not (more and rows):
        return rows, None
    last = rows[-1][0]
    return rows, conversation_cursor(last.last_message_at or last.created_at, last.id)


# Replying


async def reply(
    session: HubAsyncSession,
    user: CurrentUser,
    conversation_id: uuid.UUID,
    *,
    text: str | None,
    private: bool,
    reply_to: uuid.UUID | None,
    attachment_ids: list[uuid.UUID] | None = None,
) -> Message:
    """Store the reply as queued (or a private note as final) and hand it to the channel after commit."""
    conversation, _customer = await conversation_for_user(session, user, conversation_id)
    media = await storage.media_in_order(session, attachment_ids or [])
    if not text and not media:
        raise InvalidInput(N_("A message needs text or attachments."), field="text")
    if reply_to is not None:
        quoted = await session.get(Message, reply_to)
        if quoted is None or quoted.conversation_id != conversation.id:
            raise InvalidInput(N_("The quoted message is not in this conversation."), field="reply_to")
    return await _queue_reply(
        session, conversation, sender_id=user.id, text=text, private=private, reply_to=reply_to, media=media
    )


async def send_ticket_reply(session: HubAsyncSession, reply: PublicReplyWritten) -> None:
    """A ticket's public reply, sent in its conversation under the comment's id: once, however
    often the event arrives."""
    if await session.get(Message, reply.comment_id) is not None:
        return
    conversation = await session.get(Conversation, reply.conversation_id)
    if conversation is None:
        return  # the conversation was deleted meanwhile
    media = list(await session.scalars(select(Media).where(Media.id.in_(reply.attachment_ids))))
    media.sort(key=lambda m: reply.attachment_ids.index(m.id))
    # A disconnected channel: the reply is kept as failed, with its reason, as an agent's would be.
    with contextlib.suppress(Conflict):
        await _queue_reply(
            session,
            conversation,
            sender_id=reply.author_id,
            text=reply.text,
            private=False,
            reply_to=None,
            media=media,
            message_id=reply.comment_id,
        )


async def _queue_reply(
    session: HubAsyncSession,
    conversation: Conversation,
    *,
    sender_id: uuid.UUID | None,
    text: str | None,
    private: bool,
    reply_to: uuid.UUID | None,
    media: list[Media],
    message_id: uuid.UUID | None = None,
) -> Message:
    channel = await session.get_one(Channel, conversation.channel_id)
    refused = not private and channel.state != "ready"
    message = Message(
        id=message_id or new_id(),
        conversation_id=conversation.id,
        channel_id=conversation.channel_id,
        direction="outbound",
        kind="note" if private else media[0].kind if media else "text",
        text=text,
        status="failed" if refused else "sent" if private else "queued",
        failure_reason=f"channel is {channel.state}" if refused else None,
        sender_user_id=sender_id,
        reply_to_id=reply_to,
        private=private,
    )
    session.add(message)
    if not private:
        conversation.last_message_at = utcnow()
        conversation.last_message_preview = _preview(text, message.kind)
    await session.flush()
    for position, item in enumerate(media):
        session.add(MessageAttachment(message_id=message.id, media_id=item.id, position=position))
    push_to_audience(
        session,
        conversation,
        "messageSent",
        {"chatId": str(conversation.id), "message": message_out(message, media)},
    )
    if refused:
        await session.commit()  # kept, as failed with its reason, so nothing typed is lost
        refuse_disconnected(channel)
    if not private:
        organization_id = conversation.organization_id
        message_id = message.id
        await events.publish(
            session,
            ReplyQueued(
                organization_id=organization_id,
                conversation_id=conversation.id,
                message_id=message_id,
                sender_user_id=sender_id,
                at=message.created_at,
            ),
        )

        async def hand_to_channel() -> None:
            await kick(
                "inbox.deliver_message", organization_id=str(organization_id), message_id=str(message_id)
            )

        session.after_commit(hand_to_channel)
    await session.commit()
    return message


async def deliver(organization_id: uuid.UUID, message_id: uuid.UUID) -> None:
    """Send one queued reply through its channel; a crash before this ran is picked up by the sweep.

    The database is let go of before the channel is called and taken again for the outcome, so a
    slow or hanging receiver holds nothing but its own channel's send slots (SQLite's one shared
    connection least of all). A send whose outcome is lost (a timeout or a reset after the request
    went out) is never repeated blind: the channel's own record settles it, or it is `unknown`."""
    runtime = current()
    async with runtime.db.session(organization_id) as session:
        channel_id = await session.scalar(
            select(Message.channel_id).where(Message.id == message_id, Message.status == "queued")
        )
    if channel_id is None:
        return  # sent, or being sent, already
    # The slot first, then the claim: a reply is `sending` only while it is really under way, so
    # the sweep of stalled sends never takes one that is still waiting its turn for one.
    async with runtime.send_slots.taken(channel_id):
        try:
            claimed = await _claim_reply(runtime, organization_id, message_id)
            if claimed is None:
                return
            channel, outbound = claimed
            if channel.state != "ready":
                # A dropped connection comes back by itself; a logged-out number needs a person.
                raise ChannelError(f"channel is {channel.state}", retryable=channel.state != "logged_out")
            try:
                result: SendResult | SentRecord = await send_message(channel, outbound)
            except ChannelError as error:
                if not error.in_doubt:
                    raise
                result = await _settle(channel, message_id, error)
        except ChannelError as error:
            async with runtime.db.session(organization_id) as session:
                await _send_failed(session, message_id, error)
            return
    async with runtime.db.session(organization_id) as session:
        await _send_done(session, message_id, result)


async def _claim_reply(
    runtime: Runtime, organization_id: uuid.UUID, message_id: uuid.UUID
) -> tuple[Channel, OutboundMessage] | None:
    """Move a reply from queued to sending (only one deliverer can) and gather what the channel
    needs; the session is closed again before anything is sent."""
    # Over within HUB_SEND_SECONDS of its claim: the sweep settles a `sending` one only after.
    finish_by = time.time() + runtime.settings.send_seconds
    async with runtime.db.session(organization_id) as session:
        claimed = await session.execute(
            update(Message)
            .where(Message.id == message_id, Message.status == "queued")
            .values(status="sending", send_attempts=Message.send_attempts + 1)
            .execution_options(synchronize_session=False)
        )
        await session.commit()
        if claimed.rowcount == 0:  # type: ignore[attr-defined]
            return None
        message = await session.get_one(Message, message_id)
        conversation = await session.get_one(Conversation, message.conversation_id)
        channel = await session.get_one(Channel, message.channel_id)
        customer = await session.get_one(Customer, conversation.customer_id)
        quoted_external = None
        if message.reply_to_id:
            quoted_external = await session.scalar(
                select(Message.external_id).where(Message.id == message.reply_to_id)
            )
        media = (await attachments_of(session, [message.id])).get(message.id, [])
        recipient = customer.phone or await _channel_identity(session, customer.id, channel.id)
        await session.commit()
    outbound = await _outbound(runtime, message, recipient, media, quoted_external)
    return channel, msgspec.structs.replace(outbound, finish_by=finish_by)


async def _outbound(
    runtime: Runtime, message: Message, recipient: str, media: list[Media], quoted_external: str | None
) -> OutboundMessage:
    store = storage.media_store(runtime.settings)
    public = runtime.settings.public_url
    return OutboundMessage(
        message_id=message.id,
        conversation_id=message.conversation_id,
        recipient=recipient,
        text=message.text,
        kind=message.kind,
        attachments=tuple(
            [
                OutboundAttachment(
                    kind=m.kind,
                    content_type=m.content_type,
                    filename=m.filename,
                    data=await store.read(m.key),
                    url=storage.media_link(runtime.settings, public, m.id, seconds=86400) if public else None,
                )
                for m in media
            ]
        ),
        reply_to_external_id=quoted_external,
    )


IN_DOUBT = "it may have reached the channel: the channel could not confirm it"


async def _settle(channel: Channel, message_id: uuid.UUID, error: ChannelError) -> SentRecord:
    """Ask the channel's own record whether a send whose answer was lost arrived. Found: sent.
    Not found: the send is retried like any other. Cannot tell: `unknown`, for the agent to see."""
    try:
        record = await adapter_for(channel.kind).find_sent(channel, message_id)
    except Exception as failure:  # asking is best effort
        log.warning("channel record unavailable", channel=str(channel.id), error=repr(failure)[:200])
        record = None
    if record is None:
        raise ChannelError(IN_DOUBT, retryable=False, in_doubt=True) from error
    if not record.found:
        raise ChannelError(error.reason, retryable=True) from error
    return record


async def _send_done(
    session: HubAsyncSession, message_id: uuid.UUID, result: SendResult | SentRecord
) -> None:
    """The reply went out: sent, under the channel's id for it when that id is the channel's alone
    (an answer repeating another message's id must not clash, or the sweep would resend it)."""
    message = await session.get_one(Message, message_id)
    conversation = await session.get_one(Conversation, message.conversation_id)
    external_id = result.external_id or str(message.id)
    taken = await session.scalar(
        select(Message.id).where(
            Message.channel_id == message.channel_id,
            Message.external_id == external_id,
            Message.id != message.id,
        )
    )
    if taken is not None:
        log.warning("channel answered an id it gave before", message_id=str(message.id))
        external_id = str(message.id)
    message.status, message.external_id, message.failure_reason = "sent", external_id, None
    await count_usage(session, "messages_sent")
    await _announce_status(session, conversation, message)
    try:
        await session.commit()
    except IntegrityError:  # the same id taken meanwhile by another message
        await session.rollback()
        message = await session.get_one(Message, message_id)
        conversation = await session.get_one(Conversation, message.conversation_id)
        message.status, message.external_id, message.failure_reason = "sent", str(message.id), None
        await count_usage(session, "messages_sent")
        await _announce_status(session, conversation, message)
        await session.commit()


async def record_campaign_messages(session: HubAsyncSession, sent: CampaignMessagesSent) -> None:
    """A campaign's sent messages join their customers' conversations, so an agent sees what the
    customer is answering. A conversation a campaign starts is resolved: it waits in no one's
    open list until the customer writes back, which reopens it. A batch is a few plain
    statements, whatever its size: campaigns send many."""
    org = session.organization_id
    ids = [item.message_id for item in sent.messages]
    stored = set(await session.scalars(select(Message.id).where(one_of(session, Message.id, ids))))
    todo = [item for item in sent.messages if item.message_id not in stored]
    if not todo:
        return
    pairs = {(item.customer_id, item.channel_id) for item in todo}
    found = (
        await session.execute(
            select(
                Conversation.customer_id,
                Conversation.channel_id,
                Conversation.id,
                Conversation.status,
                Conversation.assignee_id,
            ).where(
                one_of(session, Conversation.customer_id, {customer for customer, _ in pairs}),
                one_of(session, Conversation.channel_id, {channel for _, channel in pairs}),
            )
        )
    ).all()
    conversations = {
        (row.customer_id, row.channel_id): (row.id, row.status, row.assignee_id)
        for row in found
        if (row.customer_id, row.channel_id) in pairs
    }
    last: dict[tuple[uuid.UUID, uuid.UUID], Any] = {}
    for item in todo:
        key = (item.customer_id, item.channel_id)
        if key not in last or last[key].at < item.at:
            last[key] = item
    media_ids = {item.media_id for item in todo if item.media_id}
    media = (
        {m.id: m for m in await session.scalars(select(Media).where(one_of(session, Media.id, media_ids)))}
        if media_ids
        else {}
    )
    kind = {item.message_id: media[item.media_id].kind if item.media_id in media else "text" for item in todo}
    now = utcnow()
    new_conversations = []
    new_keys = pairs - conversations.keys()
    for key in new_keys:
        newest = last[key]
        conversation_id = new_id()
        conversations[key] = (conversation_id, "resolved", None)
        new_conversations.append(
            {
                "id": conversation_id,
                "organization_id": org,
                "customer_id": key[0],
                "channel_id": key[1],
                "status": "resolved",
                "last_message_at": newest.at,
                "last_message_preview": _preview(newest.text, kind[newest.message_id]),
                "unread_count": 0,
                "created_at": now,
                "updated_at": now,
            }
        )
    if new_conversations:
        await session.execute(insert(Conversation.__table__), new_conversations)
    touched = [
        {
            "c_org": org,
            "c_id": conversations[key][0],
            "c_at": item.at,
            "c_preview": _preview(item.text, kind[item.message_id]),
        }
        for key, item in last.items()
        if key not in new_keys
    ]
    if touched:
        table = Conversation.__table__
        await session.execute(
            update(table)
            .where(
                table.c.organization_id == bindparam("c_org"),
                table.c.id == bindparam("c_id"),
                or_(table.c.last_message_at.is_(None), table.c.last_message_at < bindparam("c_at")),
            )
            .values(last_message_at=bindparam("c_at"), last_message_preview=bindparam("c_preview")),
            touched,
        )
    messages = [
        Message(
            id=item.message_id,
            organization_id=org,
            conversation_id=conversations[(item.customer_id, item.channel_id)][0],
            channel_id=item.channel_id,
            direction="outbound",
            kind=kind[item.message_id],
            text=item.text,
            status="sent",
            external_id=item.external_id,
            private=False,
            send_attempts=1,
            created_at=item.at,
            updated_at=item.at,
        )
        for item in todo
    ]
    await session.execute(insert(Message.__table__), [_row_values(message) for message in messages])
    attachments = [
        {
            "id": new_id(),
            "organization_id": org,
            "message_id": item.message_id,
            "media_id": item.media_id,
            "position": 0,
            "created_at": now,
            "updated_at": now,
        }
        for item in todo
        if item.media_id in media
    ]
    if attachments:
        await session.execute(insert(MessageAttachment.__table__), attachments)
    by_id = {item.message_id: item for item in todo}
    for message in messages:
        item = by_id[message.id]
        conversation_id, status, assignee_id = conversations[(item.customer_id, item.channel_id)]
        if status == "resolved":
            continue  # nobody is working on it; the message is there when someone opens it
        shown = [media[item.media_id]] if item.media_id in media else []
        push_after_commit(
            session,
            "messageSent",
            {"chatId": str(conversation_id), "message": message_out(message, shown)},
            roles=ROLES_SEEING_ALL,
            user_ids=[assignee_id] if assignee_id else [],
        )
    await session.commit()


async def _channel_identity(session: HubAsyncSession, customer_id: uuid.UUID, channel_id: uuid.UUID) -> str:
    from crm.models import CustomerIdentity

    identity = await session.scalar(
        select(CustomerIdentity.external_id).where(
            CustomerIdentity.customer_id == customer_id, CustomerIdentity.channel_id == channel_id
        )
    )
    return identity or ""


async def _send_failed(session: HubAsyncSession, message_id: uuid.UUID, error: ChannelError) -> None:
    message = await session.get_one(Message, message_id)
    conversation = await session.get_one(Conversation, message.conversation_id)
    attempt = message.send_attempts
    if error.retryable and attempt <= len(RETRY_DELAYS):
        message.status, message.failure_reason = "queued", error.reason[:500]
        await schedule(
            session,
            "inbox.deliver_message",
            utcnow() + retry_delay(attempt),
            key=f"inbox.send:{message.id}",
            organization_id=str(conversation.organization_id),
            message_id=str(message.id),
        )
        log.info("reply will be retried", message_id=str(message.id), attempt=attempt, reason=error.reason)
        await session.commit()
        return
    # In doubt and unconfirmed: `unknown`, never sent again by the hub on its own.
    message.status = "unknown" if error.in_doubt else "failed"
    message.failure_reason = error.reason[:500]
    await _announce_status(session, conversation, message)
    await session.commit()


def retry_delay(attempts: int) -> timedelta:
    """How long a reply the channel refused `attempts` times waits before its next try."""
    return timedelta(seconds=RETRY_DELAYS[attempts - 1]) if attempts else timedelta(0)


async def requeue_stalled(runtime: Runtime, older_than: timedelta = timedelta(minutes=2)) -> int:
    """Replies left queued or sending by a process that died. A queued one is handed to the
    channel again; a sending one may have gone out, so it is settled (`inbox.settle_reply`)
    from the channel's record instead of being sent blind, once its send is surely over. A reply
    waiting for a retry is stalled only once its retry is overdue too."""
    now = utcnow()
    over_before = now - timedelta(seconds=runtime.settings.send_seconds) - SETTLE_MARGIN
    async with runtime.db.system_session() as session:
        candidates = (
            await session.execute(
                select(
                    Message.id,
                    Message.organization_id,
                    Message.status,
                    Message.send_attempts,
                    Message.updated_at,
                ).where(
                    Message.direction == "outbound",
                    Message.status.in_(("queued", "sending")),
                    Message.updated_at < now - older_than,
                )
            )
        ).all()
    rows = [
        row
        for row in candidates
        if (row.status == "sending" and row.updated_at < over_before)
        or (row.status == "queued" and row.updated_at + retry_delay(row.send_attempts) + older_than < now)
    ]
    for row in rows:
        task = "inbox.settle_reply" if row.status == "sending" else "inbox.deliver_message"
        await kick(task, organization_id=str(row.organization_id), message_id=str(row.id))
    return len(rows)


# A message's transaction commits well within this; the sweep looks only at messages older.
WROTE_GRACE = timedelta(seconds=30)
WROTE_BATCH = 5000
WROTE_MARK = "inbox.customers_wrote"
WROTE_FIRST_LOOKBACK = timedelta(hours=1)  # where the very first run starts


async def publish_who_wrote(runtime: Runtime, grace: timedelta = WROTE_GRACE) -> int:
    """Publish `CustomersWrote` for the inbound messages stored since the last run, in the same
    transaction that moves the watermark on: the work the per-message hints do at once is then
    durable too (a process that dies right after acknowledging a message loses none of it).
    Message ids are time-ordered, so the stretch is a range of the primary key."""
    now = utcnow()
    until = id_at(now - grace)
    async with runtime.db.system_session() as session:
        await session.execute(
            insert_for(session, Watermark)
            .values(
                id=new_id(),
                name=WROTE_MARK,
                position=str(id_at(now - grace - WROTE_FIRST_LOOKBACK)),
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["name"])
        )
        mark = await session.scalar(select(Watermark).where(Watermark.name == WROTE_MARK).with_for_update())
        assert mark is not None
        since = uuid.UUID(mark.position)
        if since >= until:
            await session.commit()
            return 0
        rows = (
            await session.execute(
                select(
                    Message.id,
                    Message.organization_id,
                    Message.conversation_id,
                    Message.created_at,
                    Conversation.customer_id,
                )
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(Message.id > since, Message.id <= until, Message.direction == "inbound")
                .order_by(Message.id)
                .limit(WROTE_BATCH)
            )
        ).all()
        wrote: dict[uuid.UUID, dict[uuid.UUID, CustomerWrote]] = defaultdict(dict)
        for row in rows:
            seen = wrote[row.organization_id].get(row.conversation_id)
            wrote[row.organization_id][row.conversation_id] = CustomerWrote(
                conversation_id=row.conversation_id,
                customer_id=row.customer_id,
                first_at=seen.first_at if seen else row.created_at,
                last_at=row.created_at,
            )
        for organization_id, conversations in wrote.items():
            await events.publish(
                session,
                CustomersWrote(organization_id=organization_id, conversations=list(conversations.values())),
            )
        mark.position = str(rows[-1].id if len(rows) == WROTE_BATCH else until)
        await session.commit()
    return len(rows)


async def settle_reply(organization_id: uuid.UUID, message_id: uuid.UUID) -> None:
    """A reply a dead process left `sending`: the channel's record says whether it arrived; not
    found, it is sent again; the channel cannot tell, it is `unknown` for the agent to see."""
    runtime = current()
    async with runtime.db.session(organization_id) as session:
        message = await session.get(Message, message_id)
        if message is None or message.status != "sending":
            return
        channel = await session.get_one(Channel, message.channel_id)
        await session.commit()
    try:
        async with runtime.send_slots.taken(channel.id):
            record = await _settle(
                channel,
                message_id,
                ChannelError("the sending process stopped", retryable=True, in_doubt=True),
            )
    except ChannelError as error:
        async with runtime.db.session(organization_id) as session:
            if error.retryable:  # not found: it never arrived, so it goes out again
                await session.execute(
                    update(Message)
                    .where(Message.id == message_id, Message.status == "sending")
                    .values(status="queued")
                    .execution_options(synchronize_session=False)
                )

                async def hand_to_channel() -> None:
                    await kick(
                        "inbox.deliver_message",
                        organization_id=str(organization_id),
                        message_id=str(message_id),
                    )

                session.after_commit(hand_to_channel)
                await session.commit()
            else:
                await _send_failed(session, message_id, error)
        return
    async with runtime.db.session(organization_id) as session:
        await _send_done(session, message_id, record)


# Assignment, status, read state


async def assign(
    session: HubAsyncSession, user: CurrentUser, conversation_id: uuid.UUID, assignee_id: uuid.UUID | None
) -> tuple[Conversation, Customer]:
    conversation, customer = await conversation_for_user(session, user, conversation_id)
    if user.role not in ("admin", "manager") and assignee_id not in (user.id, None):
        raise InvalidInput(N_("Agents may assign conversations only to themselves."), field="assignee_id")
    if assignee_id is not None:
        assignee = await session.get(User, assignee_id)
        if assignee is None or not assignee.is_active or not can(assignee.role, "whatsapp", "write"):
            raise InvalidInput(N_("This user cannot be assigned conversations."), field="assignee_id")
    previous = conversation.assignee_id
    if previous == assignee_id:
        return conversation, customer
    conversation.assignee_id = assignee_id
    await events.publish(
        session,
        ConversationAssigned(
            organization_id=conversation.organization_id,
            conversation_id=conversation.id,
            assignee_id=assignee_id,
            previous_assignee_id=previous,
        ),
    )
    await push_conversation(session, conversation, customer)
    if previous is not None and previous != assignee_id:
        # The agent who lost it hears so once, then no more of it.
        push_after_commit(
            session, "conversationUnassigned", {"chatId": str(conversation.id)}, user_ids=[previous]
        )
    await session.commit()
    return conversation, customer


async def update_conversation(
    session: HubAsyncSession, user: CurrentUser, conversation_id: uuid.UUID, changes: ConversationUpdate
) -> tuple[Conversation, Customer]:
    conversation, customer = await conversation_for_user(session, user, conversation_id)
    status = conversation.status if changes.status is UNSET else changes.status
    snoozed_until = conversation.snoozed_until if changes.snoozed_until is UNSET else changes.snoozed_until
    if status == "snoozed":
        if snoozed_until is None or snoozed_until <= utcnow():
            raise InvalidInput(
                N_("A snoozed conversation needs a time in the future."), field="snoozed_until"
            )
        await schedule(
            session,
            "inbox.wake_snoozed",
            snoozed_until,
            key=f"inbox.snooze:{conversation.id}",
            organization_id=str(conversation.organization_id),
            conversation_id=str(conversation.id),
        )
    else:
        snoozed_until = None
    conversation.status, conversation.snoozed_until = status, snoozed_until
    await push_conversation(session, conversation, customer)
    await session.commit()
    return conversation, customer


async def wake_snoozed(organization_id: uuid.UUID, conversation_id: uuid.UUID) -> None:
    async with current().db.session(organization_id) as session:
        conversation = await session.get(Conversation, conversation_id)
        if conversation is None or conversation.status != "snoozed":
            return
        if conversation.snoozed_until and conversation.snoozed_until > utcnow():
            return  # snoozed again for later; that job will wake it
        conversation.status, conversation.snoozed_until = "open", None
        customer = await session.get_one(Customer, conversation.customer_id)
        await push_conversation(session, conversation, customer)
        await session.commit()


async def mark_read(session: HubAsyncSession, user: CurrentUser, conversation_id: uuid.UUID) -> Conversation:
    """Zero the unread count, tell the user's other tabs, and send read receipts on the channel.
    Reading a chat tells the customer it was read, so it is a change: members, who only look, may not."""
    if not can(user.role, "whatsapp", "write"):
        raise Forbidden()
    conversation, customer = await conversation_for_user(session, user, conversation_id)
    if conversation.unread_count == 0:
        return conversation
    unread_external = list(
        await session.scalars(
            select(Message.external_id)
            .where(Message.conversation_id == conversation.id, Message.direction == "inbound")
            .order_by(Message.id.desc())
            .limit(conversation.unread_count)
        )
    )
    conversation.unread_count = 0
    await push_conversation(session, conversation, customer)
    organization_id, channel_id, recipient = (
        conversation.organization_id,
        conversation.channel_id,
        customer.phone,
    )

    async def send_receipts() -> None:
        await kick(
            "inbox.send_read_receipts",
            organization_id=str(organization_id),
            channel_id=str(channel_id),
            recipient=recipient or "",
            external_ids=[e for e in unread_external if e],
        )

    session.after_commit(send_receipts)
    await session.commit()
    return conversation


async def send_read_receipts(
    organization_id: uuid.UUID, channel_id: uuid.UUID, recipient: str, external_ids: list[str]
) -> None:
    async with current().db.session(organization_id) as session:
        channel = await session.get(Channel, channel_id)
    if channel is None or not external_ids or channel.state != "ready":
        return
    try:
        await adapter_for(channel.kind).mark_read(channel, recipient=recipient, external_ids=external_ids)
    except ChannelError as error:
        log.info("read receipt not sent", channel_id=str(channel_id), reason=error.reason)


def refuse_disconnected(channel: Channel) -> None:
    if channel.state != "ready":
        raise Conflict(
            N_("The channel {name} is {state}; messages cannot be sent now."),
            field="channel",
            name=channel.name,
            state=STATE_NAMES.get(channel.state, Term(channel.state)),
        )


# Editing, deleting and forwarding replies


async def _own_reply(
    session: HubAsyncSession, user: CurrentUser, message_id: uuid.UUID
) -> tuple[Message, Conversation]:
    message = await session.get(Message, message_id)
    if message is None:
        raise NotFound()
    conversation, _ = await conversation_for_user(session, user, message.conversation_id)
    if message.direction != "outbound" or message.sender_user_id != user.id or message.deleted_at is not None:
        raise Conflict(N_("Only your own messages can be changed."), field="message_id")
    return message, conversation


async def edit_message(
    session: HubAsyncSession, user: CurrentUser, message_id: uuid.UUID, text: str
) -> Message:
    message, conversation = await _own_reply(session, user, message_id)
    message.text, message.edited_at = text, utcnow()
    push_to_audience(
        session,
        conversation,
        "messageUpdated",
        {"chatId": str(conversation.id), "message": await message_with_media(session, message)},
    )
    if not message.private and message.external_id:
        _after_commit_on_channel(session, "edit", conversation, message)
    await session.commit()
    return message


async def delete_message(session: HubAsyncSession, user: CurrentUser, message_id: uuid.UUID) -> Message:
    message, conversation = await _own_reply(session, user, message_id)
    message.deleted_at = utcnow()
    push_to_audience(
        session,
        conversation,
        "messageDeleted",
        {"chatId": str(conversation.id), "messageId": str(message.id)},
    )
    if not message.private and message.external_id:
        _after_commit_on_channel(session, "delete", conversation, message)
    await session.commit()
    return message


def _after_commit_on_channel(
    session: HubAsyncSession, action: str, conversation: Conversation, message: Message
) -> None:
    organization_id, message_id = conversation.organization_id, message.id

    async def hand_to_channel() -> None:
        await kick(
            "inbox.change_on_channel",
            organization_id=str(organization_id),
            message_id=str(message_id),
            action=action,
        )

    session.after_commit(hand_to_channel)


async def change_on_channel(organization_id: uuid.UUID, message_id: uuid.UUID, action: str) -> None:
    """Carry an edit or a deletion to the channel; the inbox already shows it either way."""
    async with current().db.session(organization_id) as session:
        message = await session.get_one(Message, message_id)
        conversation = await session.get_one(Conversation, message.conversation_id)
        channel = await session.get_one(Channel, message.channel_id)
        customer = await session.get_one(Customer, conversation.customer_id)
        recipient = customer.phone or await _channel_identity(session, customer.id, channel.id)
    if channel.state != "ready" or not message.external_id:
        return
    adapter = adapter_for(channel.kind)
    try:
        if action == "edit":
            await adapter.edit(
                channel, recipient=recipient, external_id=message.external_id, text=message.text or ""
            )
        else:
            await adapter.delete(channel, recipient=recipient, external_id=message.external_id)
    except ChannelError as error:
        log.warning(
            "change not carried to the channel",
            action=action,
            message_id=str(message_id),
            reason=error.reason,
        )


async def forward_message(
    session: HubAsyncSession, user: CurrentUser, message_id: uuid.UUID, target_conversation_id: uuid.UUID
) -> Message:
    original = await session.get(Message, message_id)
    if original is None or original.deleted_at is not None or original.private:
        raise NotFound()
    await conversation_for_user(session, user, original.conversation_id)  # the user may read the original
    if not original.text:
        raise InvalidInput(N_("Only messages with text can be forwarded for now."), field="message_id")
    return await reply(
        session, user, target_conversation_id, text=original.text, private=False, reply_to=None
    )


# Labels


async def create_label(session: HubAsyncSession, *, name: str, color: str) -> Label:
    label = Label(name=name.strip(), color=color)
    session.add(label)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(N_("A label with this name already exists."), field="name") from None
    await session.commit()
    return label


async def delete_label(session: HubAsyncSession, label_id: uuid.UUID) -> None:
    label = await session.get(Label, label_id)
    if label is None:
        raise NotFound()
    await session.delete(label)
    await session.commit()


async def set_labels(
    session: HubAsyncSession, user: CurrentUser, conversation_id: uuid.UUID, names: list[str]
) -> tuple[Conversation, Customer]:
    """Replace a conversation's labels; every name must be one of the organization's labels."""
    conversation, customer = await conversation_for_user(session, user, conversation_id)
    wanted = {name.strip() for name in names}
    labels = list(await session.scalars(select(Label).where(Label.name.in_(wanted)))) if wanted else []
    unknown = wanted - {label.name for label in labels}
    if unknown:
        raise InvalidInput(N_("Unknown label: {name}."), field="labels", name=sorted(unknown)[0])
    await session.execute(
        delete(ConversationLabel)
        .where(ConversationLabel.conversation_id == conversation.id)
        .execution_options(synchronize_session=False)
    )
    session.add_all(ConversationLabel(conversation_id=conversation.id, label_id=label.id) for label in labels)
    await session.flush()
    await push_conversation(session, conversation, customer)
    await session.commit()
    return conversation, customer


# Canned responses


def _manages_inbox(user: CurrentUser) -> None:
    if user.role not in ("admin", "manager"):
        raise Forbidden()


async def list_canned_responses(session: HubAsyncSession, prefix: str | None) -> list[CannedResponse]:
    statement = select(CannedResponse).order_by(CannedResponse.shortcode)
    if prefix:
        statement = statement.where(
            CannedResponse.shortcode.startswith(prefix.strip().lstrip("/"), autoescape=True)
        )
    return list(await session.scalars(statement.limit(200)))


async def save_canned_response(
    session: HubAsyncSession,
    user: CurrentUser,
    *,
    response_id: uuid.UUID | None,
    shortcode: str | None,
    content: str | None,
) -> CannedResponse:
    _manages_inbox(user)
    if response_id is None:
        response = CannedResponse(shortcode=shortcode or "", content=content or "")
        session.add(response)
    else:
        found = await session.get(CannedResponse, response_id)
        if found is None:
            raise NotFound()
        response = found
        if shortcode is not None:
            response.shortcode = shortcode
        if content is not None:
            response.content = content
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(N_("This shortcode is already used."), field="shortcode") from None
    await session.commit()
    return response


async def delete_canned_response(session: HubAsyncSession, user: CurrentUser, response_id: uuid.UUID) -> None:
    _manages_inbox(user)
    response = await session.get(CannedResponse, response_id)
    if response is None:
        raise NotFound()
    await session.delete(response)
    await session.commit()


# Search


async def search_messages(
    session: HubAsyncSession, user: CurrentUser, *, query: str, cursor: str | None, limit: int
) -> tuple[list[Message], str | None]:
    """Messages whose text matches, in conversations the user may see, newest first."""
    from hub.pagination import paginate

    visible = visible_conversations(user).with_only_columns(Conversation.id)
    statement = select(Message).where(
        Message.conversation_id.in_(visible),
        Message.deleted_at.is_(None),
        Message.text.ilike(f"%{query.strip()}%"),
    )
    rows, next_cursor = await paginate(session, statement, Message.id, cursor=cursor, limit=limit)
    return [row[0] for row in rows], next_cursor


# Automatic assignment


async def inbox_settings(session: HubAsyncSession) -> InboxSettings:
    found = await session.scalar(select(InboxSettings))
    if found is None:
        found = InboxSettings()
        session.add(found)
        await session.flush()
    return found


async def update_inbox_settings(
    session: HubAsyncSession, *, auto_assign: bool | None, agent_cap: int | None
) -> InboxSettings:
    settings = await inbox_settings(session)
    if auto_assign is not None:
        settings.auto_assign = auto_assign
    if agent_cap is not None:
        settings.agent_cap = agent_cap
    await session.commit()
    return settings


ASSIGN_BATCH = 8
_BUSY = aliased(Conversation, name="busy")  # an agent's open conversations; built once, it is costly


async def _assign_in_turn(runtime: Runtime, session: HubAsyncSession, conversation: Conversation) -> None:
    """Round-robin among the agents online now who have room under the cap; none, and it waits."""
    settings = await session.scalar(select(InboxSettings))
    if settings is None or not settings.auto_assign or runtime.pusher is None:
        return
    online = sorted(await runtime.pusher.online_in_role(conversation.organization_id, "agent"))
    if not online:
        return
    # Their turn order: those after the last one chosen, then from the start. Asked about a few at
    # a time, so a large team costs no more than a small one when the next agents have room.
    last = settings.last_assignee_id
    turn = [agent for agent in online if last is not None and agent > last]
    turn += [agent for agent in online if last is None or agent <= last]
    busy = _BUSY
    chosen = None
    for start in range(0, len(turn), ASSIGN_BATCH):
        batch = turn[start : start + ASSIGN_BATCH]
        with_room = set(
            await session.scalars(
                select(User.id)
                .outerjoin(busy, and_(busy.assignee_id == User.id, busy.status.in_(("open", "pending"))))
                .where(User.id.in_(batch), User.role == "agent", User.is_active.is_(True))
                .group_by(User.id)
                .having(func.count(busy.id) < settings.agent_cap)
            )
        )
        chosen = next((agent for agent in batch if agent in with_room), None)
        if chosen is not None:
            break
    if chosen is None:
        return
    settings.last_assignee_id = chosen
    conversation.assignee_id = chosen
    await events.publish(
        session,
        ConversationAssigned(
            organization_id=conversation.organization_id,
            conversation_id=conversation.id,
            assignee_id=chosen,
            previous_assignee_id=None,
        ),
    )


async def move_conversations(
    session: HubAsyncSession, from_customer: uuid.UUID, to_customer: uuid.UUID
) -> None:
    """Give one customer's conversations to another. Where both have one on the same channel, the
    messages and labels join the other's conversation, which keeps the latest activity."""
    theirs = {
        c.channel_id: c
        for c in await session.scalars(select(Conversation).where(Conversation.customer_id == to_customer))
    }
    for conversation in list(
        await session.scalars(select(Conversation).where(Conversation.customer_id == from_customer))
    ):
        kept = theirs.get(conversation.channel_id)
        if kept is None:
            conversation.customer_id = to_customer
            continue
        await session.execute(
            update(Message)
            .where(Message.conversation_id == conversation.id)
            .values(conversation_id=kept.id)
            .execution_options(synchronize_session=False)
        )
        labels = set(
            await session.scalars(
                select(ConversationLabel.label_id).where(ConversationLabel.conversation_id == kept.id)
            )
        )
        for link in await session.scalars(
            select(ConversationLabel).where(ConversationLabel.conversation_id == conversation.id)
        ):
            if link.label_id not in labels:
                session.add(ConversationLabel(conversation_id=kept.id, label_id=link.label_id))
        kept.unread_count += conversation.unread_count
        if conversation.last_message_at and (
            kept.last_message_at is None or conversation.last_message_at > kept.last_message_at
        ):
            kept.last_message_at = conversation.last_message_at
            kept.last_message_preview = conversation.last_message_preview
        kept.assignee_id = kept.assignee_id or conversation.assignee_id
        await session.delete(conversation)
    await session.flush()
