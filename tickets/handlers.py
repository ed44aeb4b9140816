"""What tickets do when other packages' events arrive: suggest a ticket for a message that asks
for one, and follow customers that the CRM merges."""

from __future__ import annotations

import uuid
from datetime import datetime

from crm.hooks import on_customer_merge, timeline_entries
from crm.models import Activity
from hub import events
from hub.auth import CurrentUser
from hub.db import HubAsyncSession, moment_of
from hub.runtime import current
from inbox.events import CustomersWrote, MessageReceived, ReplyQueued
from tickets import services


@events.hints(MessageReceived)  # every inbound message: no outbox row for each; a lost hint costs little
async def messages_received(received: list[MessageReceived]) -> None:
    """Messages just stored, a few at a time: tickets waiting on their customers are open again,
    and a message that asks for help suggests a ticket."""
    for organization_id, theirs in events.by_organization(received).items():
        last_written: dict[uuid.UUID, datetime] = {}
        for event in theirs:
            if not event.conversation_created:  # a conversation that just began has no tickets
                last_written[event.conversation_id] = moment_of(event.message_id)
        if last_written:
            await services.customers_wrote_since(current(), organization_id, last_written)
        for event in theirs:
            await services.suggest_ticket(
                current(),
                organization_id=organization_id,
                message_id=event.message_id,
                conversation_id=event.conversation_id,
                customer_id=event.customer_id,
                assignee_id=event.assignee_id,
                text=event.text,
            )


@events.handles(CustomersWrote, name="tickets.customers_wrote")
async def customers_wrote(event: CustomersWrote) -> None:
    """The durable catch-up of the hint above: a ticket still waiting on a customer who wrote
    after it began waiting is open again (the hint may have died with its process)."""
    await services.customers_wrote_since(
        current(), event.organization_id, {c.conversation_id: c.last_at for c in event.conversations}
    )


@on_customer_merge
async def move_tickets(session: HubAsyncSession, from_customer: uuid.UUID, to_customer: uuid.UUID) -> None:
    await services.move_tickets(session, from_customer, to_customer)


@events.handles(ReplyQueued, name="tickets.first_response_in_chat")
async def first_response_in_chat(event: ReplyQueued) -> None:
    """Answering the customer in the chat a ticket came from is the ticket's first response."""
    async with current().db.session(event.organization_id) as session:
        await services.responded_in_chat(session, event.conversation_id, event.sender_user_id, event.at)


@timeline_entries("ticket_opened", "ticket_closed", "ticket_reopened")
async def ticket_entries_hidden(
    session: HubAsyncSession, reader: CurrentUser, entries: list[Activity]
) -> set[uuid.UUID]:
    """An agent sees entries only of the tickets assigned to them (their titles say much)."""
    return await services.entries_about_hidden_tickets(session, reader, entries)
