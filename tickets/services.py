"""Ticket rules: who sees and changes what, the status workflow, comments, the timeline, SLA clocks
that count business hours and pause while the customer is awaited, and suggested tickets."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from time import monotonic
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from msgspec import UNSET
from sqlalchemy import Select, and_, case, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from crm import services as crm
from crm.models import Customer
from hub import events, storage
from hub.auth import CurrentUser
from hub.db import HubAsyncSession, one_of, utcnow
from hub.errors import Forbidden, InvalidInput, NotFound
from hub.i18n import N_, find_keyword
from hub.models import Media, ModuleSetting, Organization, User
from hub.pagination import paginate
from hub.permissions import can, roles_with
from hub.realtime import push_after_commit
from hub.runtime import Runtime, current
from hub.services import assigned_to
from hub.tasks import schedule
from tickets.calendar import WEEKDAYS, BusinessCalendar
from tickets.events import PublicReplyWritten
from tickets.models import (
    MET_AT,
    TARGETS,
    SlaPolicy,
    Ticket,
    TicketAttachment,
    TicketChange,
    TicketComment,
    TicketSettings,
)
from tickets.schemas import (
    PRIORITIES,
    BusinessHours,
    CommentIn,
    CommentOut,
    SlaPolicyIn,
    SlaReport,
    SlaReportRow,
    SlaShare,
    SlaTarget,
    SuggestionRule,
    TicketIn,
    TicketOut,
    TicketSettingsOut,
    TicketSettingsUpdate,
    TicketUpdate,
)

# Everyone who reads tickets sees all of them, except agents: they see those assigned to them.
ROLES_SEEING_ALL = tuple(role for role in roles_with("ticketing", "read") if role != "agent")
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

DEFAULT_SUGGESTION_RULES = [
    {
        "keywords": ["refund", "broken", "not working", "complaint", "problem", "damaged", "error"],
        "kind": "support",
        "priority": "normal",
    },
    {
        "keywords": ["مشكلة", "عطل", "لا يعمل", "شكوى", "استرجاع", "استرداد", "تالف", "خطأ"],
        "kind": "support",
        "priority": "normal",
    },
]


# Who sees what


def visible_tickets(user: CurrentUser) -> Select[tuple[Ticket]]:
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
    session: HubAsyncSession, ticket: Ticket, event: str, data: Any, *, also: tuple[uuid.UUID, ...] = ()
) -> None:
    """Everyone who may see the ticket: the roles that see all tickets, and its assignee."""
    users = [u for u in (ticket.assignee_id, *also) if u is not None]
    push_after_commit(session, event, data, roles=ROLES_SEEING_ALL, user_ids=users)


def ticket_out(ticket: Ticket) -> TicketOut:
    return TicketOut(
        id=ticket.id,
        number=ticket.number,
        kind=ticket.kind,
        title=ticket.title,
        description=ticket.description,
        status=ticket.status,
        priority=ticket.priority,
        customer_id=ticket.customer_id,
        conversation_id=ticket.conversation_id,
        assignee_id=ticket.assignee_id,
        created_by=ticket.created_by,
        tags=list(ticket.tags or []),
        context=list(ticket.context or []),
        created_at=ticket.created_at,
        updated_at=ticket.updated_at,
        resolved_at=ticket.resolved_at,
        closed_at=ticket.closed_at,
        first_response=_target_out(ticket, "first_response"),
        resolution=_target_out(ticket, "resolution"),
    )


def _target_out(ticket: Ticket, target: str) -> SlaTarget | None:
    if ticket.sla_policy_id is None and getattr(ticket, f"{target}_due_at") is None:
        return None
    return SlaTarget(
        due_at=getattr(ticket, f"{target}_due_at"),
        left_seconds=getattr(ticket, f"{target}_left"),
        met_at=ticket.met_at(target),
        warned_at=getattr(ticket, f"{target}_warned_at"),
        breached_at=getattr(ticket, f"{target}_breached_at"),
    )


def _note(
    session: HubAsyncSession, ticket: Ticket, actor_id: uuid.UUID | None, kind: str, **details: Any
) -> None:
    session.add(TicketChange(ticket_id=ticket.id, actor_id=actor_id, kind=kind, details=details))


# Tickets


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
        digest = await crm.read_conversation(session, data.conversation_id, CONTEXT_MESSAGES)
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
    await _start_clocks(session, ticket, now)
    actor_id = actor.id if actor else None
    _note(session, ticket, actor_id, "created", status="open", priority=ticket.priority)
    if assignee_id is not None:
        _note(session, ticket, actor_id, "assignee", old=None, new=str(assignee_id))
    if customer_id is not None:
        await crm.record_activity(
            session,
            customer_id,
            "ticket_opened",
            {"ticket_id": str(ticket.id), "number": ticket.number, "title": ticket.title},
            key=f"ticket:{ticket.id}:opened",
        )
    push_to_audience(session, ticket, "ticketCreated", {"ticket": ticket_out(ticket)})
    if assignee_id is not None:
        push_to_audience(
            session, ticket, "ticketAssigned", {"ticketId": str(ticket.id), "agentId": str(assignee_id)}
        )
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
        statement = statement.where(crm.has_tag(Ticket.tags, tag))
    if query and query.strip():
        needle = f"%{crm.like_literal(query.strip().lower())}%"
        conditions = [
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
            _note(session, ticket, actor.id, field, new=value if field != "description" else None)
    if data.tags is not UNSET and sorted(set(data.tags)) != ticket.tags:
        _note(session, ticket, actor.id, "tags", old=ticket.tags, new=sorted(set(data.tags)))
        ticket.tags = sorted(set(data.tags))
    if data.customer_id is not UNSET and data.customer_id != ticket.customer_id:
        await _check_customer(session, data.customer_id)
        _note(session, ticket, actor.id, "customer", old=_str(ticket.customer_id), new=_str(data.customer_id))
        ticket.customer_id = data.customer_id
    if data.priority is not UNSET and data.priority != ticket.priority:
        _note(session, ticket, actor.id, "priority", old=ticket.priority, new=data.priority)
        ticket.priority = data.priority
        await _restart_clocks(session, ticket, now)
    if data.status is not UNSET and data.status != ticket.status:
        await _change_status(session, ticket, actor.id, data.status, now)
    ticket.updated_at = now
    push_to_audience(session, ticket, "ticketUpdated", {"ticket": ticket_out(ticket)})
    await session.commit()
    return ticket


def _str(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


async def _change_status(
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
    _note(session, ticket, actor_id, "status", old=old, new=status)
    if old in CLOCK_RUNS and status not in CLOCK_RUNS:
        await _pause_clocks(session, ticket, now)  # before the resolution counts as met
    ticket.status = status
    if status in DONE and ticket.resolved_at is None:
        ticket.resolved_at = now  # closing an unresolved ticket resolves it too
    if status == "closed":
        ticket.closed_at = now
    if status not in DONE:
        ticket.resolved_at, ticket.closed_at = None, None  # reopened
    if old not in CLOCK_RUNS and status in CLOCK_RUNS:
        await _resume_clocks(session, ticket, now)
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
    _note(session, ticket, actor.id, "assignee", old=_str(previous), new=_str(assignee_id))
    ticket.assignee_id = assignee_id
    ticket.updated_at = utcnow()
    payload = {"ticketId": str(ticket.id), "agentId": _str(assignee_id), "previousAgentId": _str(previous)}
    also = (previous,) if previous is not None else ()
    push_to_audience(session, ticket, "ticketAssigned", payload, also=also)
    push_to_audience(session, ticket, "ticketUpdated", {"ticket": ticket_out(ticket)})
    await session.commit()
    return ticket


# Comments


async def add_comment(
    session: HubAsyncSession, actor: CurrentUser, ticket_id: uuid.UUID, data: CommentIn
) -> tuple[TicketComment, list[Media]]:
    ticket = await ticket_for_user(session, actor, ticket_id)
    media = await storage.media_in_order(session, data.attachments)
    attachment_ids = [m.id for m in media]
    if not (data.text and data.text.strip()) and not media:
        raise InvalidInput(N_("A comment needs text or attachments."), field="text")
    if data.public and ticket.conversation_id is None:
        raise InvalidInput(
            N_("This ticket has no conversation, so a public reply cannot reach the customer."),
            field="public",
        )
    mentioned = list(dict.fromkeys(data.mentions))
    users = list(await session.scalars(select(User).where(User.id.in_(mentioned)))) if mentioned else []
    if len(users) != len(mentioned):
        raise InvalidInput(N_("A mentioned user is not in the organization."), field="mentions")
    now = utcnow()
    comment = TicketComment(
        ticket_id=ticket.id,
        author_id=actor.id,
        text=data.text,
        public=data.public,
        mentions=[str(u) for u in mentioned],
        created_at=now,
        updated_at=now,
    )
    session.add(comment)
    await session.flush()
    for position, item in enumerate(media):
        session.add(TicketAttachment(comment_id=comment.id, media_id=item.id, position=position))
    _note(session, ticket, actor.id, "comment", comment_id=str(comment.id), public=data.public)
    if data.public:
        assert ticket.conversation_id is not None
        await events.publish(
            session,
            PublicReplyWritten(
                organization_id=ticket.organization_id,
                ticket_id=ticket.id,
                comment_id=comment.id,
                conversation_id=ticket.conversation_id,
                author_id=actor.id,
                text=data.text,
                attachment_ids=tuple(attachment_ids),
            ),
        )
        if ticket.first_responded_at is None:
            await fire_due(session, ticket, now)  # an overdue response breaches, even if the check is late
            ticket.first_responded_at = now
            _note(session, ticket, actor.id, "first_response", met=_met_in_time(ticket, "first_response"))
    ticket.updated_at = now
    out = comment_out(comment, media)
    push_to_audience(session, ticket, "commentAdded", {"ticketId": str(ticket.id), "comment": out})
    # Only those who may see the ticket hear that they were mentioned.
    told = [
        u.id for u in users if u.id != actor.id and (u.role in ROLES_SEEING_ALL or u.id == ticket.assignee_id)
    ]
    if told:
        push_after_commit(
            session,
            "mentioned",
            {"ticketId": str(ticket.id), "number": ticket.number, "comment": out, "by": str(actor.id)},
            user_ids=told,
        )
    await session.commit()
    return comment, media


async def customer_wrote(runtime: Runtime, organization_id: uuid.UUID, conversation_id: uuid.UUID) -> int:
    """The customer answered: the conversation's tickets waiting on them are open again, and their
    SLA clocks run on."""
    async with runtime.db.session(organization_id) as session:
        waiting = list(
            await session.scalars(
                select(Ticket).where(
                    Ticket.conversation_id == conversation_id, Ticket.status == "waiting_on_customer"
                )
            )
        )
        now = utcnow()
        for ticket in waiting:
            await _change_status(session, ticket, None, "open", now)
            ticket.updated_at = now
            push_to_audience(session, ticket, "ticketUpdated", {"ticket": ticket_out(ticket)})
        await session.commit()
        return len(waiting)


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
            await _change_status(session, ticket, None, "open", now)
            ticket.updated_at = now
            push_to_audience(session, ticket, "ticketUpdated", {"ticket": ticket_out(ticket)})
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
        _note(
            session,
            ticket,
            responder_id,
            "first_response",
            met=_met_in_time(ticket, "first_response"),
            via="chat",
        )
        push_to_audience(session, ticket, "ticketUpdated", {"ticket": ticket_out(ticket)})
    await session.commit()


def _met_in_time(ticket: Ticket, target: str) -> bool:
    return getattr(ticket, f"{target}_breached_at") is None


def comment_out(comment: TicketComment, media: list[Media]) -> CommentOut:
    settings = current().settings
    return CommentOut(
        id=comment.id,
        ticket_id=comment.ticket_id,
        author_id=comment.author_id,
        text=comment.text,
        public=comment.public,
        mentions=list(comment.mentions or []),
        attachments=[storage.describe(settings, m) for m in media],
        created_at=comment.created_at,
    )


async def list_comments(
    session: HubAsyncSession, user: CurrentUser, ticket_id: uuid.UUID, *, cursor: str | None, limit: int
) -> tuple[list[CommentOut], str | None]:
    """Oldest first, as a conversation reads."""
    ticket = await ticket_for_user(session, user, ticket_id)
    rows, next_cursor = await paginate(
        session,
        select(TicketComment).where(TicketComment.ticket_id == ticket.id),
        TicketComment.id,
        cursor=cursor,
        limit=limit,
        newest_first=False,
    )
    comments = [row[0] for row in rows]
    media: dict[uuid.UUID, list[Media]] = {c.id: [] for c in comments}
    if comments:
        for attachment, item in await session.execute(
            select(TicketAttachment, Media)
            .join(Media, Media.id == TicketAttachment.media_id)
            .where(TicketAttachment.comment_id.in_(media))
            .order_by(TicketAttachment.position)
        ):
            media[attachment.comment_id].append(item)
    return [comment_out(c, media[c.id]) for c in comments], next_cursor


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


# Business hours and SLA clocks


async def ticket_settings(session: HubAsyncSession) -> TicketSettings:
    """The organization's ticket settings, made with the defaults on first use."""
    settings = await session.scalar(select(TicketSettings))
    if settings is not None:
        return settings
    try:
        async with session.begin_nested():
            settings = TicketSettings(
                time_zone=None,
                business_hours={},
                holidays=[],
                suggestion_rules=DEFAULT_SUGGESTION_RULES,
                create_automatically=False,
            )
            session.add(settings)
            await session.flush()
        return settings
    except IntegrityError:  # made at the same moment by another request
        found = await session.scalar(select(TicketSettings))
        assert found is not None
        return found


async def _time_zone(session: HubAsyncSession, settings: TicketSettings) -> str:
    if settings.time_zone:
        return settings.time_zone
    return await session.scalar(select(Organization.time_zone)) or "UTC"


def calendar_of(
    time_zone: str, business_hours: dict[str, list[list[str]]], holidays: list[str]
) -> BusinessCalendar:
    def clock(text: str) -> time:
        return time.max if text == "24:00" else time.fromisoformat(text)

    return BusinessCalendar(
        time_zone=time_zone,
        hours={
            WEEKDAYS.index(day): [(clock(start), clock(end)) for start, end in periods]
            for day, periods in business_hours.items()
            if periods
        },
        holidays=frozenset(date.fromisoformat(d) for d in holidays),
    )


async def business_calendar(session: HubAsyncSession) -> BusinessCalendar:
    settings = await ticket_settings(session)
    return calendar_of(await _time_zone(session, settings), settings.business_hours, settings.holidays)


async def settings_out(session: HubAsyncSession) -> TicketSettingsOut:
    settings = await ticket_settings(session)
    return TicketSettingsOut(
        time_zone=await _time_zone(session, settings),
        business_hours=msgspec.convert(settings.business_hours, BusinessHours),
        holidays=[date.fromisoformat(d) for d in settings.holidays],
        suggestion_rules=[msgspec.convert(rule, SuggestionRule) for rule in settings.suggestion_rules],
        create_automatically=settings.create_automatically,
    )


async def update_settings(session: HubAsyncSession, changes: TicketSettingsUpdate) -> TicketSettingsOut:
    settings = await ticket_settings(session)
    if changes.time_zone is not UNSET:
        if changes.time_zone is not None:
            try:
                ZoneInfo(changes.time_zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise InvalidInput(N_("This is not a known time zone."), field="time_zone") from None
        settings.time_zone = changes.time_zone
    if changes.business_hours is not UNSET:
        hours = msgspec.to_builtins(changes.business_hours)
        for day, periods in hours.items():
            for start, end in periods:
                if end <= start:
                    raise InvalidInput(
                        N_("Each period must end after it starts."), field=f"business_hours.{day}"
                    )
        settings.business_hours = {day: periods for day, periods in hours.items() if periods}
    if changes.holidays is not UNSET:
        settings.holidays = sorted({d.isoformat() for d in changes.holidays})
    if changes.suggestion_rules is not UNSET:
        settings.suggestion_rules = msgspec.to_builtins(changes.suggestion_rules)
    if changes.create_automatically is not UNSET:
        settings.create_automatically = changes.create_automatically
    await session.commit()
    _suggestion_cache.pop(settings.organization_id, None)  # this process sees the change at once
    return await settings_out(session)


async def list_policies(session: HubAsyncSession) -> list[SlaPolicy]:
    policies = list(await session.scalars(select(SlaPolicy)))
    return sorted(policies, key=lambda p: PRIORITIES.index(p.priority))  # type: ignore[arg-type]


async def set_policy(session: HubAsyncSession, priority: str, data: SlaPolicyIn) -> SlaPolicy:
    """Targets apply to tickets opened (or given this priority) from now on."""
    if priority not in PRIORITIES:
        raise NotFound()
    policy = await session.scalar(select(SlaPolicy).where(SlaPolicy.priority == priority))
    if policy is None:
        policy = SlaPolicy(priority=priority, first_response_minutes=1, resolution_minutes=1)
        session.add(policy)
    policy.first_response_minutes = data.first_response_minutes
    policy.resolution_minutes = data.resolution_minutes
    policy.business_hours_only = data.business_hours_only
    await session.commit()
    return policy


async def delete_policy(session: HubAsyncSession, priority: str) -> None:
    policy = await session.scalar(select(SlaPolicy).where(SlaPolicy.priority == priority))
    if policy is None:
        raise NotFound()
    await session.delete(policy)
    await session.commit()


def _target_seconds(policy: SlaPolicy, target: str) -> float:
    return 60.0 * (policy.first_response_minutes if target == "first_response" else policy.resolution_minutes)


async def _policy_and_calendar(
    session: HubAsyncSession, ticket: Ticket
) -> tuple[SlaPolicy | None, BusinessCalendar]:
    policy = await session.scalar(select(SlaPolicy).where(SlaPolicy.priority == ticket.priority))
    calendar = await business_calendar(session)
    if policy is not None and not policy.business_hours_only:
        calendar = BusinessCalendar(time_zone=calendar.time_zone)  # round the clock
    return policy, calendar


async def _start_clocks(session: HubAsyncSession, ticket: Ticket, now: datetime) -> None:
    """Due times from the ticket's priority's policy, counted from now."""
    policy, calendar = await _policy_and_calendar(session, ticket)
    ticket.sla_policy_id = policy.id if policy else None
    for target in TARGETS:
        if policy is None:
            _clear_target(ticket, target)
        else:
            await _run_target(session, ticket, target, calendar, now, _target_seconds(policy, target), policy)


async def _restart_clocks(session: HubAsyncSession, ticket: Ticket, now: datetime) -> None:
    """A new priority: its targets less the business time the ticket has used already."""
    policy, calendar = await _policy_and_calendar(session, ticket)
    used = {target: await _used_seconds(session, ticket, target, calendar, now) for target in TARGETS}
    ticket.sla_policy_id = policy.id if policy else None
    for target in TARGETS:
        if ticket.met_at(target) is not None or getattr(ticket, f"{target}_breached_at") is not None:
            continue  # decided already
        if policy is None:
            _clear_target(ticket, target)
            continue
        left = _target_seconds(policy, target) - used[target]
        if ticket.status in CLOCK_RUNS:
            await _run_target(session, ticket, target, calendar, now, left, policy)
        else:  # paused: keep what is left for when the clock runs again
            setattr(ticket, f"{target}_left", max(left, 0.0))


async def _used_seconds(
    session: HubAsyncSession, ticket: Ticket, target: str, calendar: BusinessCalendar, now: datetime
) -> float:
    old = await session.get(SlaPolicy, ticket.sla_policy_id) if ticket.sla_policy_id else None
    left = getattr(ticket, f"{target}_left")
    due = getattr(ticket, f"{target}_due_at")
    if old is not None and (left is not None or due is not None):
        remaining = left if left is not None else calendar.seconds_between(now, due)
        return max(_target_seconds(old, target) - remaining, 0.0)
    return calendar.seconds_between(ticket.created_at, now)


def _clear_target(ticket: Ticket, target: str) -> None:
    for suffix in ("due_at", "warn_at", "left"):
        setattr(ticket, f"{target}_{suffix}", None)


async def _run_target(
    session: HubAsyncSession,
    ticket: Ticket,
    target: str,
    calendar: BusinessCalendar,
    now: datetime,
    left: float,
    policy: SlaPolicy | None,
) -> None:
    """Set the target's clock running with `left` business seconds to go, and book its checks."""
    due = calendar.add(now, max(left, 0.0))
    setattr(ticket, f"{target}_due_at", due)
    setattr(ticket, f"{target}_left", None)
    warn = None
    if policy is not None and getattr(ticket, f"{target}_warned_at") is None:
        before_due = (1 - WARN_SHARE) * _target_seconds(policy, target)
        if left > before_due:
            warn = calendar.add(now, left - before_due)
    setattr(ticket, f"{target}_warn_at", warn)
    await session.flush()
    for stage, moment in (("warn", warn), ("breach", due)):
        if moment is not None:
            await schedule(
                session,
                "tickets.check_sla",
                moment,
                key=f"sla:{ticket.id}:{target}:{stage}",
                organization_id=str(ticket.organization_id),
                ticket_id=str(ticket.id),
            )


async def _pause_clocks(session: HubAsyncSession, ticket: Ticket, now: datetime) -> None:
    """Stop the running clocks and keep the business time left; a target already overdue
    breaches now, before its clock stops."""
    await fire_due(session, ticket, now)
    _policy, calendar = await _policy_and_calendar(session, ticket)
    for target in TARGETS:
        due = getattr(ticket, f"{target}_due_at")
        if due is None or not ticket.running(target):
            continue
        setattr(ticket, f"{target}_left", calendar.seconds_between(now, due))
        setattr(ticket, f"{target}_warn_at", None)


async def _resume_clocks(session: HubAsyncSession, ticket: Ticket, now: datetime) -> None:
    policy, calendar = await _policy_and_calendar(session, ticket)
    for target in TARGETS:
        left = getattr(ticket, f"{target}_left")
        if left is None or ticket.met_at(target) is not None:
            continue
        await _run_target(session, ticket, target, calendar, now, left, policy)


async def fire_due(session: HubAsyncSession, ticket: Ticket, now: datetime) -> list[str]:
    """Warn and breach what is due on this ticket, each once: the stamp is set only where it is
    still empty, in the database, so a check that runs twice (or twice at once) fires once."""
    fired = []
    for target in TARGETS:
        running = [
            Ticket.id == ticket.id,
            getattr(Ticket, f"{target}_left").is_(None),
            getattr(Ticket, MET_AT[target]).is_(None),
            getattr(Ticket, f"{target}_breached_at").is_(None),
        ]
        due_column = getattr(Ticket, f"{target}_due_at")
        for stage, moment_column, stamp, extra in (
            # No "at risk" for what is already overdue: it breaches instead.
            ("warning", getattr(Ticket, f"{target}_warn_at"), f"{target}_warned_at", due_column > now),
            ("breach", due_column, f"{target}_breached_at", due_column <= now),
        ):
            result = await session.execute(
                update(Ticket)
                .where(*running, extra, moment_column <= now, getattr(Ticket, stamp).is_(None))
                .values({stamp: now})
                .execution_options(synchronize_session=False)
            )
            if result.rowcount:  # type: ignore[attr-defined]
                setattr(ticket, stamp, now)
                fired.append(f"{target}:{stage}")
                due = getattr(ticket, f"{target}_due_at")
                kind = "sla_warning" if stage == "warning" else "sla_breached"
                _note(session, ticket, None, kind, target=target, due_at=due.isoformat() if due else None)
                push_to_audience(
                    session,
                    ticket,
                    "slaWarning" if stage == "warning" else "slaBreached",
                    {
                        "ticketId": str(ticket.id),
                        "number": ticket.number,
                        "target": target,
                        "dueAt": due.isoformat() if due else None,
                    },
                )
    return fired


async def check_sla(runtime: Runtime, organization_id: uuid.UUID, ticket_id: uuid.UUID) -> list[str]:
    async with runtime.db.session(organization_id) as session:
        ticket = await session.get(Ticket, ticket_id)
        if ticket is None:
            return []
        fired = await fire_due(session, ticket, utcnow())
        await session.commit()
        return fired


async def sweep_sla(runtime: Runtime) -> int:
    """Fire whatever is due and not yet fired, in every organization: the timed checks are the
    punctual way, this is the safety net for a check lost with a process that died mid-way."""
    async with runtime.db.system_session() as session:
        found = list(
            (
                await session.execute(
                    select(Ticket.organization_id, Ticket.id)
                    .where(Ticket.sla_check_at <= utcnow())
                    .limit(1000)
                )
            ).all()
        )
    for organization_id, ticket_id in found:
        await check_sla(runtime, organization_id, ticket_id)
    return len(found)


# SLA report


async def sla_report(session: HubAsyncSession, since: datetime, until: datetime) -> SlaReport:
    """Of the tickets opened in the period, how many met each target, per priority and per agent."""
    if until <= since:
        raise InvalidInput(N_("The end of the period must come after its start."), field="until")
    opened = and_(Ticket.created_at >= since, Ticket.created_at < until, Ticket.sla_policy_id.is_not(None))

    def counts(target: str) -> list[Any]:
        met_at = getattr(Ticket, MET_AT[target])
        breached = getattr(Ticket, f"{target}_breached_at")
        return [
            func.count(case((and_(met_at.is_not(None), breached.is_(None)), 1))),
            func.count(case((breached.is_not(None), 1))),
        ]

    columns = [func.count(), *counts("first_response"), *counts("resolution")]

    def row(priority: str | None, assignee: uuid.UUID | None, values: Any) -> SlaReportRow:
        total, first_met, first_breached, resolution_met, resolution_breached = values
        return SlaReportRow(
            priority=priority,
            assignee_id=assignee,
            first_response=_share(total, first_met, first_breached),
            resolution=_share(total, resolution_met, resolution_breached),
        )

    by_priority = {
        priority: values
        for priority, *values in await session.execute(
            select(Ticket.priority, *columns).where(opened).group_by(Ticket.priority)
        )
    }
    by_agent = list(
        await session.execute(
            select(Ticket.assignee_id, *columns)
            .where(opened, Ticket.assignee_id.is_not(None))
            .group_by(Ticket.assignee_id)
        )
    )
    return SlaReport(
        since=since,
        until=until,
        by_priority=[row(p, None, by_priority[p]) for p in PRIORITIES if p in by_priority],
        by_agent=[row(None, assignee, values) for assignee, *values in by_agent],
    )


def _share(total: int, met: int, breached: int) -> SlaShare:
    decided = met + breached
    return SlaShare(
        tickets=int(total),
        met=int(met),
        breached=int(breached),
        share_met=round(met / decided, 4) if decided else None,
    )


# Suggested tickets

# Each process keeps an organization's rules for a short while: every inbound message is
# matched against them, and reading them each time would cost every message two queries.
SUGGESTION_RULES_SECONDS = 30.0
_suggestion_cache: dict[uuid.UUID, tuple[float, tuple[list[dict[str, Any]], bool] | None]] = {}


async def _suggestion_setup(
    runtime: Runtime, organization_id: uuid.UUID
) -> tuple[list[dict[str, Any]], bool] | None:
    cached = _suggestion_cache.get(organization_id)
    if cached is not None and cached[0] > monotonic():
        return cached[1]
    async with runtime.db.session(organization_id) as session:
        enabled = await session.scalar(
            select(ModuleSetting.enabled).where(ModuleSetting.module == "ticketing")
        )
        settings = await ticket_settings(session)
        setup = None if enabled is False else (list(settings.suggestion_rules), settings.create_automatically)
        await session.commit()
    _suggestion_cache[organization_id] = (monotonic() + SUGGESTION_RULES_SECONDS, setup)
    return setup


def matching_rule(rules: list[dict[str, Any]], text: str) -> tuple[dict[str, Any], str] | None:
    """The first rule one of whose keywords the text holds, and that keyword."""
    for rule in rules:
        keyword = find_keyword(text, rule.get("keywords", []))
        if keyword is not None:
            return rule, keyword
    return None


async def suggest_ticket(
    runtime: Runtime,
    *,
    organization_id: uuid.UUID,
    message_id: uuid.UUID,
    conversation_id: uuid.UUID,
    customer_id: uuid.UUID,
    assignee_id: uuid.UUID | None,
    text: str | None,
) -> Ticket | None:
    """A message that matches a rule suggests a ticket to whoever handles the chat, or opens one
    when the organization said so."""
    if not text:
        return None
    setup = await _suggestion_setup(runtime, organization_id)
    if setup is None:
        return None  # the ticketing module is switched off
    rules, automatic = setup
    found = matching_rule(rules, text)
    if found is None:
        return None
    async with runtime.db.session(organization_id) as session:
        rule, keyword = found
        title = " ".join(text.split())[:80]
        draft = TicketIn(
            title=title,
            description=text[:20000],
            kind=rule.get("kind", "support"),
            priority=rule.get("priority", "normal"),
            customer_id=customer_id,
            conversation_id=conversation_id,
        )
        if automatic:
            assignee = await session.get(User, assignee_id) if assignee_id else None
            if assignee is not None and assignee.is_active and can(assignee.role, "ticketing", "write"):
                draft.assignee_id = assignee.id
            return await create_ticket(session, None, draft, source_message_id=message_id)
        push_after_commit(
            session,
            "ticketSuggested",
            {
                "chatId": str(conversation_id),
                "messageId": str(message_id),
                "keyword": keyword,
                "draft": msgspec.to_builtins(draft),
            },
            user_ids=[assignee_id] if assignee_id else [],
            roles=() if assignee_id else ROLES_ASSIGNING,
        )
        await session.commit()
        return None


async def move_tickets(session: HubAsyncSession, from_customer: uuid.UUID, to_customer: uuid.UUID) -> None:
    await session.execute(
        update(Ticket)
        .where(Ticket.customer_id == from_customer)
        .values(customer_id=to_customer)
        .execution_options(synchronize_session=False)
    )
