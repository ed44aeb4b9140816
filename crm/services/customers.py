"""Customers and their custom attributes: creating, changing, deleting, listing by cursor and
searching, with duplicates by phone or e-mail refused."""

from __future__ import annotations

import re
import uuid
from datetime import date
from typing import Any

from msgspec import UNSET
from sqlalchemy import String, cast, func, or_, select, tuple_

from channels.phones import read_phone
from crm.models import AttributeDefinition, Company, Customer
from crm.schemas import AttributeDefinitionIn, CustomerIn, CustomerUpdate
from crm.services.identity import phone_owner
from hub.db import HubAsyncSession, on_postgres
from hub.errors import Conflict, InvalidInput, NotFound
from hub.i18n import N_, Term
from hub.models import Organization, User
from hub.pagination import check_limit, decode_position, encode_position, paginate
from hub.schemas import EMAIL_PATTERN
from hub.sql import has_tag, like_literal


async def normalized_phone(session: HubAsyncSession, raw: str | None) -> str | None:
    """E.164 with the organization's default region; 400 naming the field when it is no number."""
    if raw is None or not raw.strip():
        return None
    region = None
    if not raw.strip().startswith(("+", "00")):
        region = await session.scalar(select(Organization.default_region))
    phone = read_phone(raw, region)
    if phone is None:
        raise InvalidInput(N_("This is not a valid phone number."), field="phone")
    return phone


def normalized_email(raw: str | None) -> str | None:
    return raw.strip().lower() if raw else None


async def check_user(session: HubAsyncSession, user_id: uuid.UUID | None, field: str) -> None:
    if user_id is not None and await session.get(User, user_id) is None:
        raise InvalidInput(N_("There is no such user in this organization."), field=field)


async def check_company(session: HubAsyncSession, company_id: uuid.UUID | None) -> None:
    if company_id is not None and await session.get(Company, company_id) is None:
        raise InvalidInput(N_("There is no such company."), field="company_id")


async def _attribute_values(
    session: HubAsyncSession, stored: dict[str, Any], changes: dict[str, Any]
) -> dict[str, Any]:
    """The stored values with the changes applied, each checked against its definition."""
    if not changes:
        return dict(stored)
    definitions = {d.key: d for d in await session.scalars(select(AttributeDefinition))}
    values = dict(stored)
    for key, value in changes.items():
        field = f"attributes.{key}"
        definition = definitions.get(key)
        if definition is None:
            raise InvalidInput(N_("There is no attribute named {key}."), field=field, key=key)
        if value is None:
            values.pop(key, None)
            continue
        values[key] = typed_value(definition, value, field)
    return values


def typed_value(definition: AttributeDefinition, value: Any, field: str) -> Any:
    kind = definition.kind
    if kind == "text" and isinstance(value, str) and len(value) <= 1000:
        return value
    if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if kind == "date" and isinstance(value, str):
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    if kind == "choice" and value in definition.choices:
        return value
    raise InvalidInput(
        N_("This value does not fit the attribute's type ({kind})."), field=field, kind=ATTRIBUTE_KINDS[kind]
    )


ATTRIBUTE_KINDS = {
    "text": Term(N_("text")),
    "number": Term(N_("number")),
    "date": Term(N_("date, as YYYY-MM-DD")),
    "choice": Term(N_("one of its choices")),
}


CONTACT_FIELDS = {"phone": Term(N_("phone number")), "email": Term(N_("e-mail address"))}


async def _refuse_duplicates(
    session: HubAsyncSession, *, phone: str | None, email: str | None, other_than: uuid.UUID | None = None
) -> None:
    for field, value in (("phone", phone), ("email", email)):
        if value is None:
            continue
        if field == "phone":
            existing = await session.scalar(select(phone_owner(value, session.organization_id)))
        else:
            existing = await session.scalar(select(Customer.id).where(Customer.email == value))
        if existing is not None and existing != other_than:
            raise Conflict(
                N_("A customer with this {what} exists already."),
                field=field,
                extra={"existing_id": str(existing)},
                what=CONTACT_FIELDS[field],
            )


async def create_customer(session: HubAsyncSession, data: CustomerIn) -> Customer:
    phone, email = await normalized_phone(session, data.phone), normalized_email(data.email)
    await _refuse_duplicates(session, phone=phone, email=email)
    await check_user(session, data.owner_id, "owner_id")
    await check_company(session, data.company_id)
    customer = Customer(
        name=data.name.strip(),
        phone=phone,
        email=email,
        language=data.language,
        opted_out=data.opted_out,
        tags=sorted(set(data.tags)),
        attributes=await _attribute_values(session, {}, data.attributes),
        owner_id=data.owner_id,
        company_id=data.company_id,
        other_phones=[],
    )
    session.add(customer)
    await session.commit()
    return customer


async def get_customer(session: HubAsyncSession, customer_id: uuid.UUID) -> Customer:
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise NotFound()
    return customer


async def update_customer(session: HubAsyncSession, customer_id: uuid.UUID, data: CustomerUpdate) -> Customer:
    customer = await get_customer(session, customer_id)
    phone = await normalized_phone(session, data.phone) if data.phone is not UNSET else customer.phone
    email = normalized_email(data.email) if data.email is not UNSET else customer.email
    await _refuse_duplicates(session, phone=phone, email=email, other_than=customer.id)
    # A number kept from a merge that becomes the main one is no longer "other".
    customer.other_phones = [other for other in customer.other_phones if other.phone != phone]
    if data.owner_id is not UNSET:
        await check_user(session, data.owner_id, "owner_id")
        customer.owner_id = data.owner_id
    if data.company_id is not UNSET:
        await check_company(session, data.company_id)
        customer.company_id = data.company_id
    if data.attributes is not UNSET:
        customer.attributes = await _attribute_values(session, customer.attributes, data.attributes)
    if data.name is not UNSET:
        customer.name = data.name.strip()
    if data.language is not UNSET:
        customer.language = data.language
    if data.opted_out is not UNSET:
        customer.opted_out = data.opted_out
    if data.tags is not UNSET:
        customer.tags = sorted(set(data.tags))
    customer.phone, customer.email = phone, email
    await session.commit()
    return customer


async def delete_customer(session: HubAsyncSession, customer_id: uuid.UUID) -> None:
    customer = await get_customer(session, customer_id)
    await session.delete(customer)
    await session.commit()


async def list_customers(
    session: HubAsyncSession,
    *,
    query: str | None,
    tag: str | None,
    company_id: uuid.UUID | None,
    sort: str,
    cursor: str | None,
    limit: int,
) -> tuple[list[Customer], str | None]:
    """Customers matching the search (name, phone, e-mail, attribute values), by cursor."""
    statement = select(Customer)
    if query and query.strip():
        statement = statement.where(_customer_search(query.strip().lower(), postgres=on_postgres(session)))
    if tag:
        statement = statement.where(has_tag(Customer.tags, tag))
    if company_id is not None:
        statement = statement.where(Customer.company_id == company_id)
    if sort != "name":
        rows, next_cursor = await paginate(
            session, statement, Customer.id, cursor=cursor, limit=limit, newest_first=sort == "newest"
        )
        return [row[0] for row in rows], next_cursor
    limit = check_limit(limit)
    if cursor:
        name, after = decode_position(cursor, str, uuid.UUID)
        statement = statement.where(tuple_(Customer.name, Customer.id) > tuple_(name, after))
    found = list(await session.scalars(statement.order_by(Customer.name, Customer.id).limit(limit + 1)))
    more = len(found) > limit
    found = found[:limit]
    return found, encode_position(found[-1].name, str(found[-1].id)) if more and found else None


def _customer_search(text: str, *, postgres: bool) -> Any:
    """A part of the name, number, e-mail or an attribute value. On PostgreSQL trigram indexes
    answer it (migration 0012 indexes these same expressions), and a one-word name spelt a little
    differently matches too (Mohamed finds Mohammed)."""
    needle = f"%{like_literal(text)}%"
    conditions = [
        func.lower(Customer.name).like(needle, escape="\\"),
        func.lower(Customer.phone).like(needle.replace(" ", ""), escape="\\"),
        func.lower(Customer.email).like(needle, escape="\\"),
        func.lower(cast(Customer.attributes, String)).like(needle, escape="\\"),
    ]
    if postgres and len(text) >= 3 and text.isalpha():
        # One word of letters: a name, maybe misspelt. (Longer searches match too loosely: "Customer
        # 99999" is 0.6 alike to "Customer 99975".) Word similarity above 0.6.
        conditions.append(func.lower(Customer.name).op("%>")(text))
    return or_(*conditions)


async def list_attribute_definitions(session: HubAsyncSession) -> list[AttributeDefinition]:
    return list(await session.scalars(select(AttributeDefinition).order_by(AttributeDefinition.key)))


async def create_attribute_definition(
    session: HubAsyncSession, data: AttributeDefinitionIn
) -> AttributeDefinition:
    if data.kind == "choice" and not data.choices:
        raise InvalidInput(N_("A choice attribute needs its choices."), field="choices")
    if await session.scalar(select(AttributeDefinition.id).where(AttributeDefinition.key == data.key)):
        raise Conflict(N_("This name is taken."), field="key")
    definition = AttributeDefinition(
        key=data.key,
        label=data.label.strip(),
        kind=data.kind,
        choices=list(dict.fromkeys(data.choices)) if data.kind == "choice" else [],
    )
    session.add(definition)
    await session.commit()
    return definition


async def delete_attribute_definition(session: HubAsyncSession, definition_id: uuid.UUID) -> None:
    definition = await session.get(AttributeDefinition, definition_id)
    if definition is None:
        raise NotFound()
    await session.delete(definition)
    await session.commit()


EMAIL = re.compile(EMAIL_PATTERN)
