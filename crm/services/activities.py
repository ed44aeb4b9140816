"""A customer's timeline: what the team writes down, what the hub records (once per source), and
what each reader may see of it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from msgspec import UNSET
from sqlalchemy import select

from crm.hooks import entry_filters
from crm.models import Activity, Customer, Deal
from crm.schemas import ActivityIn, ActivityUpdate
from crm.services.customers import get_customer
from crm.services.scoring import note_recent_message, rescore_by_id
from hub.auth import CurrentUser
from hub.db import HubAsyncSession, insert_for, new_id, on_postgres, table_of, utcnow
from hub.errors import Forbidden, InvalidInput, NotFound
from hub.i18n import N_
from hub.pagination import paginate
from hub.permissions import can


async def add_activity(
    session: HubAsyncSession, actor: CurrentUser, customer_id: uuid.UUID, data: ActivityIn
) -> Activity:
    await get_customer(session, customer_id)
    if data.deal_id is not None:
        deal = await session.get(Deal, data.deal_id)
        if deal is None or deal.customer_id != customer_id:
            raise InvalidInput(N_("There is no such deal for this customer."), field="deal_id")
    if data.due_at is not None and data.kind != "task":
        raise InvalidInput(N_("Only tasks have a due date."), field="due_at")
    activity = Activity(
        customer_id=customer_id,
        kind=data.kind,
        text=data.text.strip(),
        author_id=actor.id,
        deal_id=data.deal_id,
        due_at=data.due_at,
        details={},
    )
    session.add(activity)
    await session.flush()
    await rescore_by_id(session, customer_id)
    await session.commit()
    return activity


async def update_activity(
    session: HubAsyncSession,
    actor: CurrentUser,
    customer_id: uuid.UUID,
    activity_id: uuid.UUID,
    data: ActivityUpdate,
) -> Activity:
    """A note, call, meeting or task changes at the hand of its author, or of whoever writes the
    CRM (managers, admins); entries the hub recorded by itself are not edited."""
    activity = await session.get(Activity, activity_id)
    if activity is None or activity.customer_id != customer_id or activity.author_id is None:
        raise NotFound()
    if activity.author_id != actor.id and not can(actor.role, "crm", "write"):
        raise Forbidden(N_("Only its author, a manager or an admin may change this entry."))
    if data.text is not UNSET:
        activity.text = data.text.strip()
    if data.due_at is not UNSET:
        if activity.kind != "task":
            raise InvalidInput(N_("Only tasks have a due date."), field="due_at")
        activity.due_at = data.due_at
    if data.done is not UNSET:
        activity.done_at = (activity.done_at or utcnow()) if data.done else None
    await session.commit()
    return activity


async def timeline(
    session: HubAsyncSession, reader: CurrentUser, customer_id: uuid.UUID, *, cursor: str | None, limit: int
) -> tuple[list[Activity], str | None]:
    """The customer's timeline as this reader may see it: an entry about something they may not
    read (an agent and a ticket of someone else's) is left out."""
    await get_customer(session, customer_id)
    rows, next_cursor = await paginate(
        session,
        select(Activity).where(Activity.customer_id == customer_id),
        Activity.id,
        cursor=cursor,
        limit=limit,
    )
    entries = [row[0] for row in rows]
    hidden: set[uuid.UUID] = set()
    for kinds, filter_entries in entry_filters:
        concerned = [entry for entry in entries if entry.kind in kinds]
        if concerned:
            hidden |= await filter_entries(session, reader, concerned)
    return [entry for entry in entries if entry.id not in hidden], next_cursor


async def record_activity(
    session: HubAsyncSession,
    customer_id: uuid.UUID,
    kind: str,
    details: dict[str, Any],
    *,
    key: str,
    at: datetime | None = None,
) -> None:
    """An entry the hub writes by itself (a conversation started, a ticket opened...), once per key:
    the events that cause them may arrive more than once."""
    if await session.scalar(select(Activity.id).where(Activity.source_key == key)) is not None:
        return
    if await session.get(Customer, customer_id) is None:
        return  # the customer was deleted meanwhile
    activity = Activity(customer_id=customer_id, kind=kind, details=details, source_key=key)
    if at is not None:
        activity.created_at = at
    session.add(activity)


async def record_activities(session: HubAsyncSession, entries: list[dict[str, Any]]) -> None:
    """Many hub-written entries at once ({customer_id, kind, details, key, at}), each once per key:
    one statement, for senders that record a batch of messages together."""
    if not entries:
        return
    table = table_of(Activity)
    rows = [
        {
            "id": new_id(),
            "organization_id": session.organization_id,
            "customer_id": entry["customer_id"],
            "kind": entry["kind"],
            "details": entry["details"],
            "source_key": entry["key"],
            "created_at": entry["at"],
            "updated_at": entry["at"],
        }
        for entry in entries
    ]
    statement = _INSERT_ONCE.get(on_postgres(session))
    if statement is None:
        statement = _INSERT_ONCE[on_postgres(session)] = insert_for(session, table).on_conflict_do_nothing(
            index_elements=["organization_id", "source_key"]
        )
    await (await session.connection()).execute(statement, rows)


_INSERT_ONCE: dict[bool, Any] = {}  # per database kind (on PostgreSQL or not), built once


async def conversation_started(
    session: HubAsyncSession,
    customer_id: uuid.UUID,
    *,
    conversation_id: uuid.UUID,
    channel_id: uuid.UUID,
    at: datetime,
    scored: bool = False,
) -> None:
    """The CRM's part of a conversation a customer opened, in the transaction that opens it: the
    entry on their timeline and the score's recent-message factor (`scored`: the customer was
    made just now with it). Done here rather than through the event's outbox, which cost a first
    contact three more transactions."""
    await record_activities(
        session,
        [
            {
                "customer_id": customer_id,
                "kind": "conversation_started",
                "details": {"conversation_id": str(conversation_id), "channel_id": str(channel_id)},
                "key": f"conversation:{conversation_id}",
                "at": at,
            }
        ],
    )
    if not scored:
        await note_recent_message(session, customer_id)
