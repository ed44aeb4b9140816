"""Who sees and changes which ticket (agents only those assigned to them), the statuses'
workflow, and the lines of a ticket's own timeline."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, select

from hub.audience import ticket_readers
from hub.auth import CurrentUser
from hub.db import HubAsyncSession
from hub.errors import NotFound
from hub.realtime import SocketEvent, push
from tickets.models import Ticket, TicketChange

# Everyone who reads tickets sees all of them, except agents: they see those assigned to them.
ROLES_SEEING_ALL = ticket_readers().roles  # who reads every ticket: one rule, in hub.audience
ROLES_ASSIGNING = ("admin", "manager")

# Where a ticket may go from each status; a closed ticket is reopened before work resumes.
TRANSITIONS = {
    "open": {"in_progress", "waiting_on_customer", "resolved", "closed"},
    "in_progress": {"open", "waiting_on_customer", "resolved", "closed"},
    "waiting_on_customer": {"open", "in_progress", "resolved", "closed"},
    "resolved": {"open", "closed"},
    "closed": {"open"},
}
CLOCK_RUNS = {"open", "in_progress"}  # waiting on the customer, resolved and closed stop SLA clocks
DONE = {"resolved", "closed"}
WARN_SHARE = 0.8  # "at risk" once 80% of a target has passed

CONTEXT_MESSAGES = 10


def visible_tickets(user: CurrentUser) -> Select[Ticket]:
    statement = select(Ticket)
    if user.role not in ROLES_SEEING_ALL:
        statement = statement.where(Ticket.assignee_id == user.id)
    return statement


async def entries_about_hidden_tickets(
    session: HubAsyncSession, reader: CurrentUser, entries: list[Any]
) -> set[uuid.UUID]:
    """Of these timeline entries (each naming `ticket_id`), those about tickets the reader may not see."""
    if reader.role in ROLES_SEEING_ALL:
        return set()
    named = {entry.id: _uuid_or_none(entry.details.get("ticket_id")) for entry in entries}
    wanted = {ticket for ticket in named.values() if ticket is not None}
    visible = (
        set(
            await session.scalars(
                visible_tickets(reader).with_only_columns(Ticket.id).where(Ticket.id.in_(wanted))
            )
        )
        if wanted
        else set()
    )
    return {entry for entry, ticket in named.items() if ticket not in visible}


def _uuid_or_none(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


async def ticket_for_user(session: HubAsyncSession, user: CurrentUser, ticket_id: uuid.UUID) -> Ticket:
    ticket = await session.scalar(visible_tickets(user).where(Ticket.id == ticket_id))
    if ticket is None:
        raise NotFound()  # another organization's, or not assigned to this agent
    return ticket


def push_to_audience(
    session: HubAsyncSession, ticket: Ticket, message: SocketEvent, *, also: tuple[uuid.UUID, ...] = ()
) -> None:
    """Everyone who may see the ticket: the roles that see all tickets, and its assignee."""
    push(session, message, ticket_readers(ticket.assignee_id, *also))


def note_change(
    session: HubAsyncSession, ticket: Ticket, actor_id: uuid.UUID | None, kind: str, **details: Any
) -> None:
    session.add(TicketChange(ticket_id=ticket.id, actor_id=actor_id, kind=kind, details=details))
