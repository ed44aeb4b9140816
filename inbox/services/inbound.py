"""Storing what customers send, once, and the receipts that move sent messages on; the durable
record of who wrote, for what must follow every message."""

from __future__ import annotations

import functools
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from channels.adapters import InboundMessage, Receipt, StoredInbound
from crm.models import Customer, CustomerIdentity
from crm.services import (
    asks_to_opt_out,
    customer_for_sender,
    new_customer_for_sender,
    opt_out_customer,
    phone_owner,
)
from crm.services import conversation_started as crm_conversation_started
from hub import events, storage
from hub.db import (
    COLUMNS,
    HubAsyncSession,
    id_at,
    insert_for,
    new_id,
    on_postgres,
    row_values,
    table_of,
    utcnow,
)
from hub.i18n import N_, translate
from hub.models import Organization, Watermark
from hub.runtime import Runtime
from hub.tasks import kick
from inbox.events import (
    ConversationStarted,
    CustomersWrote,
    CustomerWrote,
    MessageReceived,
    MessageSent,
    NewMessage,
)
from inbox.models import Conversation, ConversationLabel, Label, Message, MessageAttachment
from inbox.services.assistant import setup_of, takes
from inbox.services.routing import assign_in_turn
from inbox.views import (
    STATUS_ORDER,
    announce_status,
    conversation_out,
    message_out,
    message_preview,
    push_to_audience,
)

log = structlog.get_logger(__name__)


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
            now = utcnow()
            customer, conversation, labels = await _sender_and_conversation(session, inbound)
            new_customer = False
            if customer is None:
                sender: dict[str, Any] = {
                    "channel_id": inbound.channel_id,
                    "sender": inbound.sender,
                    "sender_is_phone": inbound.sender_is_phone,
                    "display_name": inbound.sender_name,
                }
                customer = await new_customer_for_sender(session, **sender, at=now)
                new_customer = customer is not None
                if customer is None:  # a concurrent first message made them: read them back
                    customer = await customer_for_sender(session, **sender)
            conversation_created = conversation is None
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
            kind = media[0].kind if media else inbound.kind
            changes: dict[str, Any] = {}
            # The assistant answers on this channel now: conversations wait for it, not for a turn.
            assistant_takes = takes(await setup_of(session), inbound.channel_id, now)
            if conversation is None:
                # A first message: its conversation is written whole, assigned in turn and with
                # the message counted, in one INSERT (no UPDATE after it).
                conversation = _new_conversation(session, customer.id, inbound.channel_id, at=now)
                if not assistant_takes:  # else it waits for the assistant's hand-off
                    await assign_in_turn(runtime, session, conversation)
                conversation.last_message_at = now
                conversation.last_message_preview = message_preview(inbound.text, kind)
                conversation.unread_count = 1
                if not await _start_conversation(session, conversation):
                    # A concurrent first message started it: begin again, and find it.
                    await session.rollback()
                    continue
            else:
                if conversation.status in ("resolved", "snoozed"):
                    conversation.status, conversation.snoozed_until = "open", None  # a new message reopens it
                    changes |= {"status": "open", "snoozed_until": None}
                if conversation.assignee_id is None and not assistant_takes:
                    await assign_in_turn(runtime, session, conversation)
                    if conversation.assignee_id is not None:
                        changes["assignee_id"] = conversation.assignee_id
            message = Message(
                id=new_id(),
                organization_id=inbound.organization_id,
                conversation_id=conversation.id,
                channel_id=inbound.channel_id,
                direction="inbound",
                kind=kind,
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
                await connection.execute(statements["insert_message"], row_values(message))
            except IntegrityError:
                # The same delivery arrived before (or at the same moment): answer with the first.
                await session.rollback()
                stored = await _stored_already(session, inbound)
                if stored is not None:
                    return stored
                continue
            for position, item in enumerate(media):
                session.add(MessageAttachment(message_id=message.id, media_id=item.id, position=position))
            if not conversation_created:
                conversation.last_message_at = now
                conversation.last_message_preview = message_preview(inbound.text, kind)
                touch = statements["touch_conversation"]
                if changes:  # a reopened or newly assigned conversation: in the same statement
                    touch = touch.values(**changes)
                conversation.unread_count = await connection.scalar(
                    touch,
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
                    customer_created=new_customer,
                ),
            )
            if conversation_created:
                await crm_conversation_started(
                    session,
                    customer.id,
                    conversation_id=conversation.id,
                    channel_id=inbound.channel_id,
                    at=now,
                    scored=new_customer,
                )
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
                NewMessage(
                    chat_id=conversation.id,
                    message=message_out(message, media),
                    conversation=conversation_out(conversation, customer, labels),
                ),
            )
            await session.commit()
            return StoredInbound(message_id=message.id, conversation_id=conversation.id, created=True)
    raise RuntimeError("inbound message could not be stored")


async def _opt_out(
    session: HubAsyncSession, conversation: Conversation, customer: Customer, message: Message
) -> None:
    """The customer wrote an opt-out keyword: no more campaigns for them, a timeline entry, and a
    confirmation in their language, all in the transaction that stores their message."""
    await opt_out_customer(session, customer.id, message_id=message.id)  # the CRM owns its customers
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
        session, conversation, MessageSent(chat_id=conversation.id, message=message_out(confirmation, []))
    )
    organization_id, confirmation_id = conversation.organization_id, confirmation.id

    async def hand_to_channel() -> None:
        await kick(
            "inbox.deliver_message", organization_id=str(organization_id), message_id=str(confirmation_id)
        )

    session.after_commit(hand_to_channel)


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
    customers, conversations = table_of(Customer), table_of(Conversation)
    links, labels, identities = table_of(ConversationLabel), table_of(Label), table_of(CustomerIdentity)
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
        "insert_message": insert(table_of(Message)),
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
    customer = Customer(**{attribute.key: first[column] for attribute, column in COLUMNS[Customer]})
    conversation = None
    if first["v_id"] is not None:
        conversation = Conversation(
            **{attribute.key: first[f"v_{column.name}"] for attribute, column in COLUMNS[Conversation]}
        )
    return customer, conversation, [row.label for row in rows if row.label is not None]


def _new_conversation(
    session: HubAsyncSession, customer_id: uuid.UUID, channel_id: uuid.UUID, *, at: datetime
) -> Conversation:
    """A conversation not yet written: a snapshot, not in the session (it is written by a plain
    INSERT, `_start_conversation`)."""
    return Conversation(
        id=new_id(),
        organization_id=session.organization_id,
        customer_id=customer_id,
        channel_id=channel_id,
        status="open",
        snoozed_until=None,
        assignee_id=None,
        last_message_at=None,
        last_message_preview=None,
        unread_count=0,
        created_at=at,
        updated_at=at,
    )


async def _start_conversation(session: HubAsyncSession, conversation: Conversation) -> bool:
    """Write a new conversation; False when a concurrent first message has just started the
    customer's conversation on this channel (nothing is written then)."""
    connection = await session.connection()
    statement = _start_statement("postgresql" if on_postgres(session) else "sqlite")
    return (await connection.execute(statement, row_values(conversation))).first() is not None


@functools.cache
def _start_statement(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    conversations = table_of(Conversation)
    return (
        insert(conversations)
        .on_conflict_do_nothing(index_elements=["organization_id", "customer_id", "channel_id"])
        .returning(conversations.c.id)
    )


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
        await announce_status(session, conversation, message)
        await session.commit()
    return True


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
