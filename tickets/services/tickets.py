"""Tickets: creating (from a chat too), listing by cursor, changing, the status workflow,
assignment, the customer writing back, the first response given in the chat, and the timeline."""

from __future__ import annotations

import uuid
from datetime import datetime

from msgspec import UNSET
from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from crm import services as crm
from crm.hooks import read_conversation
from crm.models import Customer
from hub.auth import CurrentUser
from hub.db import HubAsyncSession, one_of, utcnow
from hub.errors import Forbidden, InvalidInput
from hub.i18n import N_
from hub.models import User
from hub.pagination import paginate
from hub.permissions import can
from hub.runtime import Runtime
from hub.services import assigned_to
from hub.sql import has_tag, like_literal
from tickets.events import TicketAssigned, TicketCreated, TicketUpdated
from tickets.models import Ticket, TicketChange
from tickets.schemas import TicketIn, TicketUpdate
from tickets.services.access import (
    CLOCK_RUNS,
    CONTEXT_MESSAGES,
    DONE,
    ROLES_ASSIGNING,
    ROLES_SEEING_ALL,
    TRANSITIONS,
    note_change,
    push_to_audience,
    ticket_for_user,
    visible_tickets,
)
from tickets.services.sla import (
    fire_due,
    met_in_time,
    pause_clocks,
    restart_clocks,
    resume_clocks,
    start_clocks,
)
from tickets.views import ticket_out


async def _check_assignee(session: HubAsyncSession, assignee_id: uuid.UUID | None) -> None:
    if assignee_id is None:
        return
    user = await session.get(User, assignee_id)
    if user is None or not user.is_active or not can(user.role, "ticketing", "write"):
        raise InvalidInput(
            N_("Tickets can be assigned only to active users of the organization who work on tickets."),
            field="assignee_id",
        )


async def _check_customer(session: HubAsyncSession, customer_id: uuid.UUID | None) -> None:
    if customer_id is not None and await session.get(Customer, customer_id) is None:
        raise InvalidInput(N_("There is no such customer."), field="customer_id")


async def _next_number(session: HubAsyncSession) -> int:
    return int(await session.scalar(select(func.coalesce(func.max(Ticket.number), 0))) or 0) + 1


async def create_ticket(
    session: HubAsyncSession,
    actor: CurrentUser | None,
    data: TicketIn,
    *,
    source_message_id: uuid.UUID | None = None,
) -> Ticket:
    """Open a ticket; an agent's own ticket is theirs. From a chat, the customer and the chat's
    latest messages come along."""
    assignee_id = data.assignee_id
    if actor is not None and actor.role not in ROLES_ASSIGNING:
        if assignee_id not in (None, actor.id):
            raise InvalidInput(N_("Only managers and admins assign tickets to others."), field="assignee_id")
        assignee_id = actor.id  # otherwise the agent could not see the ticket they opened
    await _check_assignee(session, assignee_id)
    customer_id, context = data.customer_id, []
    if data.conversation_id is not None:
        digest = await read_conversation(session, data.conversation_id, CONTEXT_MESSAGES)
        visible = digest is not None and (
            actor is None or actor.role in ROLES_SEEING_ALL or digest.assignee_id == actor.id
        )
        if digest is None or not visible:
            raise InvalidInput(N_("There is no such conversation."), field="conversation_id")
        if customer_id not in (None, digest.customer_id):
            raise InvalidInput(N_("The customer is not the conversation's."), field="customer_id")
        customer_id, context = digest.customer_id, digest.messages
    await _check_customer(session, customer_id)
    now = utcnow()
    for _attempt in range(5):
        try:
            async with session.begin_nested():
                ticket = Ticket(
                    number=await _next_number(session),
                    kind=data.kind,
                    title=data.title.strip(),
                    description=data.description,
                    status="open",
                    priority=data.priority,
                    customer_id=customer_id,
                    conversation_id=data.conversation_id,
                    source_message_id=source_message_id,
                    assignee_id=assignee_id,
                    created_by=actor.id if actor else None,
                    tags=sorted(set(data.tags)),
                    context=context,
                    created_at=now,
                    updated_at=now,
                )
                session.add(ticket)
                await session.flush()
            break
        except IntegrityError:
            if source_message_id is not None:
                found = await session.scalar(
                    select(Ticket).where(Ticket.source_message_id == source_message_id)
                )
                if found is not None:
                    return found  # the same message made it already
            continue  # another ticket took the number: take the next
    else:
        raise RuntimeError("no ticket number could be taken")
    await start_clocks(session, ticket, now)
    actor_id = actor.id if actor else None
    note_change(session, ticket, actor_id, "created", status="open", priority=ticket.priority)
    if assignee_id is not None:
        note_change(session, ticket, actor_id, "assignee", old=None, new=str(assignee_id))
    if customer_id is not None:
        await crm.record_activity(
            session,
            customer_id,
            "ticket_opened",
            {"ticket_id": str(ticket.id), "number": ticket.number, "title": ticket.title},
            key=f"ticket:{ticket.id}:opened",
        )
    await session.flush()  # the row as it will be committed (its last update stamp included)
    push_to_audience(session, ticket, TicketCreated(ticket=ticket_out(ticket)))
    if assignee_id is not None:
        push_to_audience(session, ticket, TicketAssigned(ticket_id=ticket.id, agent_id=assignee_id))
    await session.commit()
    return ticket


async def list_tickets(
    session: HubAsyncSession,
    user: CurrentUser,
    *,
    statuses: list[str],
    priorities: list[str],
    kind: str | None,
    assignee: str | None,
    customer_id: uuid.UUID | None,
    breached: bool | None,
    tag: str | None,
    query: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Ticket], str | None]:
    statement = visible_tickets(user)
    if statuses:
        statement = statement.where(Ticket.status.in_(statuses))
    if priorities:
        statement = statement.where(Ticket.priority.in_(priorities))
    if kind:
        statement = statement.where(Ticket.kind == kind)
    if assignee:
        statement = statement.where(assigned_to(Ticket.assignee_id, assignee, user))
    if customer_id is not None:
        statement = statement.where(Ticket.customer_id == customer_id)
    if breached is not None:
        either = or_(
            Ticket.first_response_breached_at.is_not(None), Ticket.resolution_breached_at.is_not(None)
        )
        statement = statement.where(either if breached else ~either)
    if tag:
        statement = statement.where(has_tag(Ticket.tags, tag))
    if query and query.strip():
        needle = f"%{like_literal(query.strip().lower())}%"
        conditions: list[ColumnElement[bool]] = [
            func.lower(Ticket.title).like(needle, escape="\\"),
            func.lower(Ticket.description).like(needle, escape="\\"),
        ]
        number = query.strip().lstrip("#")
        if number.isdigit():
            conditions.append(Ticket.number == int(number))
        statement = statement.where(or_(*conditions))
    rows, next_cursor = await paginate(session, statement, Ticket.id, cursor=cursor, limit=limit)
    return [row[0] for row in rows], next_cursor


async def update_ticket(
    session: HubAsyncSession, actor: CurrentUser, ticket_id: uuid.UUID, data: TicketUpdate
) -> Ticket:
    ticket = await ticket_for_user(session, actor, ticket_id)
    now = utcnow()
    for field in ("title", "description", "kind"):
        value = getattr(data, field)
        if value is not UNSET and value != getattr(ticket, field):
            setattr(ticket, field, value.strip() if field == "title" and value else value)
            note_change(session, ticket, actor.id, field, new=value if field != "description" else None)
    if data.tags is not UNSET and sorted(set(data.tags)) != ticket.tags:
        note_change(session, ticket, actor.id, "tags", old=ticket.tags, new=sorted(set(data.tags)))
        ticket.tags = sorted(set(data.tags))
    if data.customer_id is not UNSET and data.customer_id != ticket.customer_id:
        await _check_customer(session, data.customer_id)
        note_change(
            session, ticket, actor.id, "customer", old=_str(ticket.customer_id), new=_str(data.customer_id)
        )
        ticket.customer_id = data.customer_id
    if data.priority is not UNSET and data.priority != ticket.priority:
        note_change(session, ticket, actor.id, "priority", old=ticket.priority, new=data.priority)
        ticket.priority = data.priority
        await restart_clocks(session, ticket, now)
    if data.status is not UNSET and data.status != ticket.status:
        await change_status(session, ticket, actor.id, data.status, now)
    ticket.updated_at = now
    push_to_audience(session, ticket, TicketUpdated(ticket=ticket_out(ticket)))
    await session.commit()
    return ticket


def _str(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


async def change_status(
    session: HubAsyncSession, ticket: Ticket, actor_id: uuid.UUID | None, status: str, now: datetime
) -> None:
    if status not in TRANSITIONS[ticket.status]:
        message = (
            N_("A closed ticket must be reopened first.")
            if ticket.status == "closed"
            else N_("A resolved ticket can only be closed or reopened.")
        )
        raise InvalidInput(message, field="status")
    old = ticket.status
    note_change(session, ticket, actor_id, "status", old=old, new=status)
    if old in CLOCK_RUNS and status not in CLOCK_RUNS:
        await pause_clocks(session, ticket, now)  # before the resolution counts as met
    ticket.status = status
    if status in DONE and ticket.resolved_at is None:
        ticket.resolved_at = now  # closing an unresolved ticket resolves it too
    if status == "closed":
        ticket.closed_at = now
    if status not in DONE:
        ticket.resolved_at, ticket.closed_at = None, None  # reopened
    if old not in CLOCK_RUNS and status in CLOCK_RUNS:
        await resume_clocks(session, ticket, now)
    if ticket.customer_id is not None and (status in DONE) != (old in DONE):
        kind = "ticket_closed" if status in DONE else "ticket_reopened"
        await crm.record_activity(
            session,
            ticket.customer_id,
            kind,
            {"ticket_id": str(ticket.id), "number": ticket.number, "title": ticket.title, "status": status},
            key=f"ticket:{ticket.id}:{kind}:{now.isoformat()}",
        )


async def assign_ticket(
    session: HubAsyncSession, actor: CurrentUser, ticket_id: uuid.UUID, assignee_id: uuid.UUID | None
) -> Ticket:
    """Managers and admins assign and reassign; the old and the new assignee both hear of it."""
    if actor.role not in ROLES_ASSIGNING:
        raise Forbidden(N_("Only managers and admins assign tickets."))
    ticket = await ticket_for_user(session, actor, ticket_id)
    await _check_assignee(session, assignee_id)
    previous = ticket.assignee_id
    if previous == assignee_id:
        return ticket
    note_change(session, ticket, actor.id, "assignee", old=_str(previous), new=_str(assignee_id))
    ticket.assignee_id = assignee_id
    ticket.updated_at = utcnow()
    assigned = TicketAssigned(ticket_id=ticket.id, agent_id=assignee_id, previous_agent_id=previous)
    also = (previous,) if previous is not None else ()
    push_to_audience(session, ticket, assigned, also=also)
    push_to_audience(session, ticket, TicketUpdated(ticket=ticket_out(ticket)))
    await session.commit()
    return ticket


async def customers_wrote_since(
    runtime: Runtime, organization_id: uuid.UUID, last_written: dict[uuid.UUID, datetime]
) -> int:
    """Tickets of these conversations still waiting on the customer although the customer wrote
    after they began waiting (the last status change) are open again; the rest stay as they are."""
    async with runtime.db.session(organization_id) as session:
        waiting = list(
            await session.scalars(
                select(Ticket).where(
                    one_of(session, Ticket.conversation_id, last_written),
                    Ticket.status == "waiting_on_customer",
                )
            )
        )
        now = utcnow()
        reopened = 0
        for ticket in waiting:
            since = await session.scalar(
                select(func.max(TicketChange.created_at)).where(
                    TicketChange.ticket_id == ticket.id, TicketChange.kind.in_(("created", "status"))
                )
            )
            assert ticket.conversation_id is not None
            if since is not None and since >= last_written[ticket.conversation_id]:
                continue  # put to wait after the customer wrote: that stands
            await change_status(session, ticket, None, "open", now)
            ticket.updated_at = now
            push_to_audience(session, ticket, TicketUpdated(ticket=ticket_out(ticket)))
            reopened += 1
        await session.commit()
        return reopened


async def responded_in_chat(
    session: HubAsyncSession, conversation_id: uuid.UUID, responder_id: uuid.UUID | None, at: datetime
) -> None:
    """The open tickets of a conversation still awaiting their first response have it now."""
    waiting = await session.scalars(
        select(Ticket).where(
            Ticket.conversation_id == conversation_id,
            Ticket.first_responded_at.is_(None),
            Ticket.status.not_in(DONE),
            Ticket.created_at <= at,
        )
    )
    for ticket in waiting:
        await fire_due(session, ticket, at)  # overdue already: it breached, late check or not
        ticket.first_responded_at = at
        note_change(
            session,
            ticket,
            responder_id,
            "first_response",
            met=met_in_time(ticket, "first_response"),
            via="chat",
        )
        push_to_audience(session, ticket, TicketUpdated(ticket=ticket_out(ticket)))
    await session.commit()


async def timeline(
    session: HubAsyncSession, user: CurrentUser, ticket_id: uuid.UUID, *, cursor: str | None, limit: int
) -> tuple[list[TicketChange], str | None]:
    ticket = await ticket_for_user(session, user, ticket_id)
    rows, next_cursor = await paginate(
        session,
        select(TicketChange).where(TicketChange.ticket_id == ticket.id),
        TicketChange.id,
        cursor=cursor,
        limit=limit,
    )
    return [row[0] for row in rows], next_cursor


async def move_tickets(session: HubAsyncSession, from_customer: uuid.UUID, to_customer: uuid.UUID) -> None:
    await session.execute(
        update(Ticket)
        .where(Ticket.customer_id == from_customer)
        .values(customer_id=to_customer)
        .execution_options(synchronize_session=False)
    )
