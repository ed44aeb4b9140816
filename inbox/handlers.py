"""What the inbox does for other packages: it is the channels' inbound sink, and it moves its
conversations when the CRM merges two customers."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from campaigns.events import CampaignMessagesSent
from channels.adapters import InboundMessage, Receipt, StoredInbound
from channels.hooks import register_inbound_sink
from crm.hooks import (
    ConversationDigest,
    conversation_reader,
    customer_fact,
    on_customer_merge,
    segment_condition,
    timeline_entries,
)
from crm.models import Activity, Customer
from hub import events
from hub.auth import CurrentUser
from hub.db import HubAsyncSession
from hub.runtime import current
from inbox import services
from inbox.events import MessageReceived
from inbox.models import Conversation, Message
from tickets.events import PublicReplyWritten


class InboxSink:
    """Stores what channels receive, so they can acknowledge with the stored ids."""

    async def store_message(self, message: InboundMessage) -> StoredInbound:
        return await services.store_inbound(current(), message)

    async def apply_receipt(self, receipt: Receipt) -> None:
        await services.apply_receipt(current(), receipt)


register_inbound_sink(InboxSink())


@events.hints(MessageReceived)  # every inbound message: no outbox row each
async def assistant_hears(received: list[MessageReceived]) -> None:
    """Customers' messages the assistant answers go to its task."""
    for event in received:
        await services.message_arrived(
            current(),
            event.organization_id,
            channel_id=event.channel_id,
            conversation_id=event.conversation_id,
            message_id=event.message_id,
        )


@on_customer_merge
async def move_conversations(
    session: HubAsyncSession, from_customer: uuid.UUID, to_customer: uuid.UUID
) -> None:
    await services.move_conversations(session, from_customer, to_customer)


# What segments may ask of conversations: conditions on the customer's id.


@segment_condition("channel_ids")
def has_conversation_on(channel_ids: list[uuid.UUID]) -> Any:
    return Customer.id.in_(select(Conversation.customer_id).where(Conversation.channel_id.in_(channel_ids)))


@segment_condition("last_contacted_after")
def contacted_since(moment: datetime) -> Any:
    return Customer.id.in_(select(Conversation.customer_id).where(Conversation.last_message_at >= moment))


@segment_condition("last_contacted_before")
def quiet_since(moment: datetime) -> Any:
    """No message since then, either way (never contacted included)."""
    return Customer.id.not_in(select(Conversation.customer_id).where(Conversation.last_message_at >= moment))


@customer_fact("last_message_at")
async def last_message_at(session: HubAsyncSession, customer_id: uuid.UUID) -> datetime | None:
    """When the customer's latest conversation last moved, for the lead score's recency."""
    return await session.scalar(
        select(func.max(Conversation.last_message_at)).where(Conversation.customer_id == customer_id)
    )


REPLY_RATE_WINDOW = 20  # the customer's latest replies-or-not that count


@customer_fact("reply_rate")
async def reply_rate(session: HubAsyncSession, customer_id: uuid.UUID) -> tuple[int, int]:
    """Of the latest messages the business sent the customer, how many the customer answered:
    (answered, sent). One answered message is one followed by an inbound message in its
    conversation; ids are time-ordered, so "followed" is a larger id."""
    sent = (
        select(Message.id, Message.conversation_id)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(
            Conversation.customer_id == customer_id,
            Message.direction == "outbound",
            Message.private.is_(False),
            Message.deleted_at.is_(None),
        )
        .order_by(Message.id.desc())
        .limit(REPLY_RATE_WINDOW)
        .subquery()
    )
    answer = aliased(Message)
    answered = (
        select(answer.id)
        .where(
            answer.conversation_id == sent.c.conversation_id,
            answer.direction == "inbound",
            answer.id > sent.c.id,
        )
        .exists()
    )
    row = (await session.execute(select(func.count(), func.count().filter(answered)).select_from(sent))).one()
    return int(row[1]), int(row[0])


@conversation_reader
async def digest(
    session: HubAsyncSession, conversation_id: uuid.UUID, latest: int
) -> ConversationDigest | None:
    """The conversation's customer, assignee and latest messages (team notes left out)."""
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None:
        return None
    messages = list(
        await session.scalars(
            select(Message)
            .where(
                Message.conversation_id == conversation_id,
                Message.private.is_(False),
                Message.deleted_at.is_(None),
            )
            .order_by(Message.id.desc())
            .limit(latest)
        )
    )
    return ConversationDigest(
        customer_id=conversation.customer_id,
        assignee_id=conversation.assignee_id,
        messages=[
            {
                "direction": message.direction,
                "kind": message.kind,
                "text": message.text,
                "at": message.created_at.isoformat(),
            }
            for message in reversed(messages)
        ],
    )


@events.handles(PublicReplyWritten, name="inbox.send_ticket_reply")
async def send_ticket_reply(event: PublicReplyWritten) -> None:
    async with current().db.session(event.organization_id) as session:
        await services.send_ticket_reply(session, event)


@events.handles(CampaignMessagesSent, name="inbox.campaign_messages")
async def campaign_messages(event: CampaignMessagesSent) -> None:
    async with current().db.session(event.organization_id) as session:
        await services.record_campaign_messages(session, event)


@timeline_entries("conversation_started")
async def conversation_entries_hidden(
    session: HubAsyncSession, reader: CurrentUser, entries: list[Activity]
) -> set[uuid.UUID]:
    """An agent sees entries only of the conversations assigned to them."""
    return await services.entries_about_hidden_conversations(session, reader, entries)
