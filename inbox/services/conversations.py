"""Conversations as people see them: who may read which (agents only their own), listing by
cursor, assignment, status and snoozing, read state, and moving them with a merged customer."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import structlog
from msgspec import UNSET
from sqlalchemy import Select, or_, select, tuple_, update

from channels.adapters import ChannelError, adapter_for
from channels.models import Channel
from crm.models import Customer
from hub import events
from hub.audience import chat_readers, people
from hub.auth import CurrentUser
from hub.db import HubAsyncSession, utcnow
from hub.errors import Forbidden, InvalidInput, NotFound
from hub.i18n import N_
from hub.models import User
from hub.pagination import decode_position, encode_position
from hub.permissions import can
from hub.realtime import push
from hub.runtime import current
from hub.services import assigned_to
from hub.tasks import kick, schedule
from inbox.events import ConversationAssigned, ConversationUnassigned
from inbox.models import Conversation, ConversationLabel, Label, Message
from inbox.schemas import ConversationUpdate
from inbox.views import push_conversation

log = structlog.get_logger(__name__)


def visible_conversations(user: CurrentUser) -> Select[Conversation, Customer]:
    statement = select(Conversation, Customer).join(Customer, Customer.id == Conversation.customer_id)
    if user.role not in chat_readers().roles:  # only their own: one rule, in hub.audience
        statement = statement.where(Conversation.assignee_id == user.id)
    return statement


async def entries_about_hidden_conversations(
    session: HubAsyncSession, reader: CurrentUser, entries: list[Any]
) -> set[uuid.UUID]:
    """Of these timeline entries (each naming `conversation_id`), those the reader may not see."""
    if reader.role in chat_readers().roles:
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
    return encode_position(moment.isoformat(), str(conversation_id))


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
        moment, identifier = decode_position(cursor, datetime.fromisoformat, uuid.UUID)
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
        push(session, ConversationUnassigned(chat_id=conversation.id), people([previous]))
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
