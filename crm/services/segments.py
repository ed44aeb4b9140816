"""Segments: saved filters over customers, counted, listed and exported (formula-safe CSV)."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from sqlalchemy import Select, func, or_, select

from crm.hooks import segment_condition_builders
from crm.models import AttributeDefinition, Customer, Deal, Segment
from crm.schemas import AttributeCondition, SegmentFilters
from crm.services.customers import list_attribute_definitions, typed_value
from hub.db import HubAsyncSession
from hub.errors import Conflict, InvalidInput, NotFound
from hub.i18n import N_
from hub.pagination import paginate
from hub.spreadsheets import safe_cell
from hub.sql import has_tag


def _attribute_condition(condition: AttributeCondition, definition: AttributeDefinition) -> Any:
    field = f"filters.attributes.{condition.key}"
    stored = Customer.attributes[condition.key]
    values = condition.value if condition.op == "in" else [condition.value]
    if not isinstance(values, list) or not values:
        raise InvalidInput(N_("Give a list of values."), field=field)
    typed = [typed_value(definition, value, field) for value in values]
    column = stored.as_float() if definition.kind == "number" else stored.as_string()
    if condition.op == "in":
        return column.in_(typed)
    if condition.op in ("gt", "gte", "lt", "lte") and definition.kind not in ("number", "date"):
        raise InvalidInput(N_("Only numbers and dates compare as larger or smaller."), field=field)
    compare = {
        "eq": column.__eq__,
        "ne": column.__ne__,
        "gt": column.__gt__,
        "gte": column.__ge__,
        "lt": column.__lt__,
        "lte": column.__le__,
    }[condition.op]
    return compare(typed[0])


async def segment_conditions(session: HubAsyncSession, filters: SegmentFilters) -> list[Any]:
    """The filters as SQL conditions on customers: evaluated by the database, never row by row."""
    conditions: list[Any] = []
    if filters.tags:
        conditions.append(or_(*(has_tag(Customer.tags, tag) for tag in filters.tags)))
    if filters.languages:
        conditions.append(Customer.language.in_(filters.languages))
    if filters.company_ids:
        conditions.append(Customer.company_id.in_(filters.company_ids))
    if filters.stage_ids:
        conditions.append(
            Customer.id.in_(select(Deal.customer_id).where(Deal.stage_id.in_(filters.stage_ids)))
        )
    if filters.created_after:
        conditions.append(Customer.created_at >= filters.created_after)
    if filters.created_before:
        conditions.append(Customer.created_at < filters.created_before)
    if filters.score_min is not None:
        conditions.append(Customer.score >= filters.score_min)
    if filters.score_max is not None:
        conditions.append(Customer.score <= filters.score_max)
    if filters.attributes:
        definitions = {d.key: d for d in await session.scalars(select(AttributeDefinition))}
        for condition in filters.attributes:
            definition = definitions.get(condition.key)
            if definition is None:
                raise InvalidInput(
                    N_("There is no attribute named {key}."),
                    field=f"filters.attributes.{condition.key}",
                    key=condition.key,
                )
            conditions.append(_attribute_condition(condition, definition))
    for name in ("channel_ids", "last_contacted_after", "last_contacted_before"):
        value = getattr(filters, name)
        if not value:
            continue
        builder = segment_condition_builders.get(name)
        if builder is None:
            raise InvalidInput(N_("This filter is not available here."), field=f"filters.{name}")
        conditions.append(builder(value))
    return conditions


async def segment_members(
    session: HubAsyncSession, filters: SegmentFilters, *, sendable: bool
) -> Select[uuid.UUID]:
    """The ids of the customers in a segment, as a query to page or stream; `sendable` leaves out
    everyone who opted out (campaigns use only that)."""
    statement = select(Customer.id).where(*await segment_conditions(session, filters))
    if sendable:
        statement = statement.where(Customer.opted_out.is_(False))
    return statement


async def count_segment(session: HubAsyncSession, filters: SegmentFilters) -> tuple[int, int]:
    """How many match, and how many of them opted out: one query."""
    row = (
        await session.execute(
            # select_from names the entity, so the organization's scope applies to the count.
            select(func.count(), func.count().filter(Customer.opted_out.is_(True)))
            .select_from(Customer)
            .where(*await segment_conditions(session, filters))
        )
    ).one()
    return int(row[0]), int(row[1])


async def get_segment(session: HubAsyncSession, segment_id: uuid.UUID) -> Segment:
    segment = await session.get(Segment, segment_id)
    if segment is None:
        raise NotFound()
    return segment


def segment_filters(segment: Segment) -> SegmentFilters:
    return msgspec.convert(segment.filters, SegmentFilters)


async def save_segment(
    session: HubAsyncSession, segment: Segment | None, *, name: str | None, filters: SegmentFilters | None
) -> Segment:
    if filters is not None:
        await segment_conditions(session, filters)  # refuse what cannot be evaluated, now
    if name is not None:
        taken = await session.scalar(select(Segment.id).where(Segment.name == name.strip()))
        if taken is not None and (segment is None or taken != segment.id):
            raise Conflict(N_("This name is taken."), field="name")
    if segment is None:
        segment = Segment(name="", filters={})
        session.add(segment)
    if name is not None:
        segment.name = name.strip()
    if filters is not None:
        segment.filters = msgspec.to_builtins(filters)
    await session.commit()
    return segment


async def list_segments(session: HubAsyncSession) -> list[Segment]:
    return list(await session.scalars(select(Segment).order_by(Segment.name)))


async def delete_segment(session: HubAsyncSession, segment_id: uuid.UUID) -> None:
    await session.delete(await get_segment(session, segment_id))
    await session.commit()


async def segment_customers(
    session: HubAsyncSession, filters: SegmentFilters, *, cursor: str | None, limit: int
) -> tuple[list[Customer], str | None]:
    members = await segment_members(session, filters, sendable=False)
    rows, next_cursor = await paginate(
        session, select(Customer).where(Customer.id.in_(members)), Customer.id, cursor=cursor, limit=limit
    )
    return [row[0] for row in rows], next_cursor


EXPORT_BATCH = 1000


async def export_segment(
    runtime: Any, organization_id: uuid.UUID, segment_id: uuid.UUID
) -> AsyncIterator[str]:
    """The segment's customers as CSV text, a batch at a time: each batch reads in its own short
    transaction, by id, so memory stays flat and the database is never held for the whole file."""
    async with runtime.db.session(organization_id) as session:
        filters = segment_filters(await get_segment(session, segment_id))
        keys = [d.key for d in await list_attribute_definitions(session)]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["id", "name", "phone", "email", "language", "opted_out", "tags", "company_id", "created_at", *keys]
    )
    after: uuid.UUID | None = None
    while True:
        async with runtime.db.session(organization_id) as session:
            members = await segment_members(session, filters, sendable=False)
            statement = (
                select(Customer).where(Customer.id.in_(members)).order_by(Customer.id).limit(EXPORT_BATCH)
            )
            if after is not None:
                statement = statement.where(Customer.id > after)
            batch = list(await session.scalars(statement))
        for customer in batch:
            attributes = customer.attributes or {}
            writer.writerow(
                [
                    customer.id,
                    safe_cell(customer.name),
                    customer.phone or "",
                    safe_cell(customer.email),
                    customer.language or "",
                    "yes" if customer.opted_out else "no",
                    safe_cell(";".join(customer.tags or [])),
                    customer.company_id or "",
                    customer.created_at.isoformat(),
                    *(safe_cell(attributes.get(key)) for key in keys),
                ]
            )
        yield out.getvalue()
        out.seek(0)
        out.truncate()
        if len(batch) < EXPORT_BATCH:
            return
        after = batch[-1].id
