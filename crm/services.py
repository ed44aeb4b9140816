"""Customer rules: phone numbers in E.164, one customer per person across channels, typed custom
attributes, companies, the sales pipeline and the activity timeline."""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
from msgspec import UNSET
from sqlalchemy import Select, String, cast, func, insert, or_, select, tuple_, update
from sqlalchemy import text as sql
from sqlalchemy.exc import IntegrityError

from channels.phones import normalize_phone
from crm.models import (
    Activity,
    AttributeDefinition,
    Company,
    CrmSettings,
    Customer,
    CustomerIdentity,
    CustomerImport,
    CustomerPhone,
    Deal,
    SalesStage,
    Segment,
)
from crm.schemas import (
    ActivityIn,
    ActivityUpdate,
    AttributeCondition,
    AttributeDefinitionIn,
    CompanyIn,
    CompanyUpdate,
    CustomerIn,
    CustomerUpdate,
    DealIn,
    DealOut,
    DealUpdate,
    ImportRequest,
    LeadIn,
    ScoringRules,
    SegmentFilters,
    StageIn,
    StageUpdate,
)
from hub import storage
from hub.auth import CurrentUser
from hub.db import HubAsyncSession, insert_for, new_id, on_postgres, utcnow
from hub.errors import Conflict, Forbidden, InvalidInput, NotFound
from hub.i18n import N_, Term, is_keyword, translate
from hub.models import Media, Organization, User
from hub.pagination import check_limit, paginate
from hub.permissions import can, roles_with
from hub.realtime import push_after_commit
from hub.schemas import EMAIL_PATTERN
from hub.tasks import kick

# Identity from channels


async def customer_for_sender(
    session: HubAsyncSession,
    *,
    channel_id: uuid.UUID,
    sender: str,
    sender_is_phone: bool,
    display_name: str | None,
) -> Customer:
    """The customer behind an inbound sender, created on first contact.

    By phone number when there is one, so one person writing to two of the organization's
    numbers is one customer; otherwise by the channel's own id of the sender.
    """
    for _attempt in range(2):
        found = await _find(session, channel_id=channel_id, sender=sender, sender_is_phone=sender_is_phone)
        if found is not None:
            return found
        try:
            async with session.begin_nested():
                customer = Customer(
                    name=(display_name or sender).strip()[:200],
                    phone=sender if sender_is_phone else None,
                    tags=[],
                    attributes={},
                    other_phones=[],
                )
                session.add(customer)
                await session.flush()
                if not sender_is_phone:
                    session.add(
                        CustomerIdentity(customer_id=customer.id, channel_id=channel_id, external_id=sender)
                    )
                    await session.flush()
            return customer
        except IntegrityError:
            continue  # a concurrent first message created it: read it back
    raise RuntimeError("customer could not be found or created")


def phone_owner(phone: Any, organization: Any) -> Any:
    """The id of the organization's customer with this number: its own phone, else a number kept
    from a merged duplicate. Two index look-ups; both name the organization."""
    customers, others = Customer.__table__.alias("owner"), CustomerPhone.__table__
    return func.coalesce(
        select(customers.c.id)
        .where(customers.c.organization_id == organization, customers.c.phone == phone)
        .scalar_subquery(),
        select(others.c.customer_id)
        .where(others.c.organization_id == organization, others.c.phone == phone)
        .scalar_subquery(),
    )


def sender_query(
    *, organization_id: uuid.UUID, channel_id: uuid.UUID, sender: str, sender_is_phone: bool
) -> Select[Any]:
    """The select of the customer behind a sender."""
    if sender_is_phone:
        return select(Customer).where(Customer.id == phone_owner(sender, organization_id))
    return (
        select(Customer)
        .join(CustomerIdentity, CustomerIdentity.customer_id == Customer.id)
        .where(CustomerIdentity.channel_id == channel_id, CustomerIdentity.external_id == sender)
    )


async def _find(
    session: HubAsyncSession, *, channel_id: uuid.UUID, sender: str, sender_is_phone: bool
) -> Customer | None:
    organization_id = session.organization_id
    return await session.scalar(
        sender_query(
            organization_id=organization_id,
            channel_id=channel_id,
            sender=sender,
            sender_is_phone=sender_is_phone,
        )
    )


# Customers


def read_phone(text: str, region: str | None) -> str | None:
    """E.164, or None: a number without a country code is read with the region; failing that, its
    digits are taken as an international number written without the plus."""
    text = text.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    phone = normalize_phone(text, region) if region and not text.startswith("+") else None
    return phone or normalize_phone(text)


async def _phone(session: HubAsyncSession, raw: str | None) -> str | None:
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


def _email(raw: str | None) -> str | None:
    return raw.strip().lower() if raw else None


async def _check_user(session: HubAsyncSession, user_id: uuid.UUID | None, field: str) -> None:
    if user_id is not None and await session.get(User, user_id) is None:
        raise InvalidInput(N_("There is no such user in this organization."), field=field)


async def _check_company(session: HubAsyncSession, company_id: uuid.UUID | None) -> None:
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
        values[key] = _typed(definition, value, field)
    return values


def _typed(definition: AttributeDefinition, value: Any, field: str) -> Any:
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
    phone, email = await _phone(session, data.phone), _email(data.email)
    await _refuse_duplicates(session, phone=phone, email=email)
    await _check_user(session, data.owner_id, "owner_id")
    await _check_company(session, data.company_id)
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
    phone = await _phone(session, data.phone) if data.phone is not UNSET else customer.phone
    email = _email(data.email) if data.email is not UNSET else customer.email
    await _refuse_duplicates(session, phone=phone, email=email, other_than=customer.id)
    # A number kept from a merge that becomes the main one is no longer "other".
    customer.other_phones = [other for other in customer.other_phones if other.phone != phone]
    if data.owner_id is not UNSET:
        await _check_user(session, data.owner_id, "owner_id")
        customer.owner_id = data.owner_id
    if data.company_id is not UNSET:
        await _check_company(session, data.company_id)
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


def _name_cursor(name: str, customer_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(json.dumps([name, str(customer_id)]).encode()).rstrip(b"=").decode()


def _read_name_cursor(cursor: str) -> tuple[str, uuid.UUID]:
    try:
        name, customer_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return str(name), uuid.UUID(customer_id)
    except (binascii.Error, ValueError, TypeError):
        raise InvalidInput(N_("The cursor is not valid."), field="cursor") from None


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
        name, after = _read_name_cursor(cursor)
        statement = statement.where(tuple_(Customer.name, Customer.id) > tuple_(name, after))
    found = list(await session.scalars(statement.order_by(Customer.name, Customer.id).limit(limit + 1)))
    more = len(found) > limit
    found = found[:limit]
    return found, _name_cursor(found[-1].name, found[-1].id) if more and found else None


def like_literal(text: str) -> str:
    """Text for a LIKE pattern (escaped by a backslash) that matches itself only."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def has_tag(column: Any, tag: str) -> Any:
    """Tags are stored as a JSON list of strings: match the tag, quoted, in its text."""
    return cast(column, String).like(f"%{like_literal(json.dumps(tag, ensure_ascii=False))}%", escape="\\")


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


# Merging two records of one person

# What packages above the CRM (the inbox, tickets) do to move their rows from one customer to
# another; they register at start-up, so a merge keeps everything in one transaction.
CustomerMover = Callable[[HubAsyncSession, uuid.UUID, uuid.UUID], Awaitable[None]]
_movers: list[CustomerMover] = []


def on_customer_merge(mover: CustomerMover) -> CustomerMover:
    _movers.append(mover)
    return mover


async def merge_customers(
    session: HubAsyncSession, actor: CurrentUser, customer_id: uuid.UUID, duplicate_id: uuid.UUID
) -> Customer:
    """Fold the duplicate into the customer: its conversations, deals, activities and channel
    identities move over; fields the customer lacks are taken from it; then it is deleted."""
    if customer_id == duplicate_id:
        raise InvalidInput(N_("A customer cannot be merged into itself."), field="duplicate_id")
    customer = await get_customer(session, customer_id)
    duplicate = await session.get(Customer, duplicate_id)
    if duplicate is None:
        raise InvalidInput(N_("There is no such customer."), field="duplicate_id")
    for mover in _movers:
        await mover(session, duplicate.id, customer.id)
    for table in (Deal, Activity):
        await session.execute(
            update(table)
            .where(table.customer_id == duplicate.id)
            .values(customer_id=customer.id)
            .execution_options(synchronize_session=False)
        )
    known = {
        (i.channel_id, i.external_id)
        for i in await session.scalars(
            select(CustomerIdentity).where(CustomerIdentity.customer_id == customer.id)
        )
    }
    for identity in await session.scalars(
        select(CustomerIdentity).where(CustomerIdentity.customer_id == duplicate.id)
    ):
        if (identity.channel_id, identity.external_id) not in known:
            identity.customer_id = customer.id
    taken = {"phone": duplicate.phone, "email": duplicate.email}
    numbers = [duplicate.phone, *(other.phone for other in duplicate.other_phones)]
    details = {"merged_name": duplicate.name, "merged_id": str(duplicate.id)}
    customer.tags = sorted(set(customer.tags or []) | set(duplicate.tags or []))
    customer.attributes = {**(duplicate.attributes or {}), **(customer.attributes or {})}
    for field in ("language", "owner_id", "company_id"):
        if getattr(customer, field) is None:
            setattr(customer, field, getattr(duplicate, field))
    customer.opted_out = customer.opted_out or duplicate.opted_out  # never send to someone who said no
    await session.delete(duplicate)
    await session.flush()  # frees the duplicate's phone and e-mail
    for field, value in taken.items():
        if getattr(customer, field) is None and value is not None:
            setattr(customer, field, value)
    # The duplicate's other numbers stay the person's: messages from them reach the kept customer.
    kept = {customer.phone, *(other.phone for other in customer.other_phones)}
    for number in numbers:
        if number is not None and number not in kept:
            customer.other_phones.append(CustomerPhone(phone=number))
            kept.add(number)
    session.add(
        Activity(customer_id=customer.id, kind="customers_merged", author_id=actor.id, details=details)
    )
    await session.commit()
    return customer


# Attribute definitions


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


# Companies


def _domain(raw: str | None) -> str | None:
    if raw is None or not raw.strip():
        return None
    domain = raw.strip().lower().removeprefix("https://").removeprefix("http://").split("/")[0]
    domain = domain.removeprefix("www.")
    if "." not in domain or " " in domain:
        raise InvalidInput(N_("This is not a valid domain."), field="domain")
    return domain


async def _refuse_duplicate_domain(
    session: HubAsyncSession, domain: str | None, other_than: uuid.UUID | None = None
) -> None:
    if domain is None:
        return
    existing = await session.scalar(select(Company.id).where(Company.domain == domain))
    if existing is not None and existing != other_than:
        raise Conflict(
            N_("A company with this domain exists already."),
            field="domain",
            extra={"existing_id": str(existing)},
        )


async def create_company(session: HubAsyncSession, data: CompanyIn) -> Company:
    domain = _domain(data.domain)
    await _refuse_duplicate_domain(session, domain)
    company = Company(name=data.name.strip(), domain=domain, sector=data.sector, size=data.size)
    session.add(company)
    await session.commit()
    return company


async def get_company(session: HubAsyncSession, company_id: uuid.UUID) -> Company:
    company = await session.get(Company, company_id)
    if company is None:
        raise NotFound()
    return company


async def update_company(session: HubAsyncSession, company_id: uuid.UUID, data: CompanyUpdate) -> Company:
    company = await get_company(session, company_id)
    if data.domain is not UNSET:
        domain = _domain(data.domain)
        await _refuse_duplicate_domain(session, domain, other_than=company.id)
        company.domain = domain
    if data.name is not UNSET:
        company.name = data.name.strip()
    if data.sector is not UNSET:
        company.sector = data.sector
    if data.size is not UNSET:
        company.size = data.size
    await session.commit()
    return company


async def delete_company(session: HubAsyncSession, company_id: uuid.UUID) -> None:
    await session.delete(await get_company(session, company_id))
    await session.commit()


async def list_companies(
    session: HubAsyncSession, *, query: str | None, cursor: str | None, limit: int
) -> tuple[list[Company], str | None]:
    statement = select(Company)
    if query and query.strip():
        needle = f"%{query.strip().lower()}%"
        statement = statement.where(or_(func.lower(Company.name).like(needle), Company.domain.like(needle)))
    rows, next_cursor = await paginate(session, statement, Company.id, cursor=cursor, limit=limit)
    return [row[0] for row in rows], next_cursor


# The pipeline

DEFAULT_STAGES = (
    (N_("New"), "open"),
    (N_("Contacted"), "open"),
    (N_("Qualified"), "open"),
    (N_("Proposal"), "open"),
    (N_("Won"), "won"),
    (N_("Lost"), "lost"),
)


async def list_stages(session: HubAsyncSession, language: str) -> list[SalesStage]:
    """The pipeline in order; an organization's first look creates the default stages in its language."""
    stages = list(await session.scalars(select(SalesStage).order_by(SalesStage.position, SalesStage.id)))
    if stages:
        return stages
    stages = [
        SalesStage(name=translate(language, name), outcome=outcome, position=position)
        for position, (name, outcome) in enumerate(DEFAULT_STAGES)
    ]
    session.add_all(stages)
    await session.commit()
    return stages


def _renumber(stages: list[SalesStage]) -> None:
    for position, stage in enumerate(stages):
        stage.position = position


async def create_stage(session: HubAsyncSession, language: str, data: StageIn) -> SalesStage:
    stages = await list_stages(session, language)
    stage = SalesStage(name=data.name.strip(), outcome=data.outcome, position=len(stages))
    session.add(stage)
    position = len(stages) if data.position is None else min(data.position, len(stages))
    stages.insert(position, stage)
    _renumber(stages)
    await session.commit()
    return stage


async def update_stage(
    session: HubAsyncSession, language: str, stage_id: uuid.UUID, data: StageUpdate
) -> SalesStage:
    stages = await list_stages(session, language)
    stage = next((s for s in stages if s.id == stage_id), None)
    if stage is None:
        raise NotFound()
    if data.name is not UNSET:
        stage.name = data.name.strip()
    if data.position is not UNSET:
        stages.remove(stage)
        stages.insert(min(data.position, len(stages)), stage)
        _renumber(stages)
    await session.commit()
    return stage


async def delete_stage(
    session: HubAsyncSession, language: str, stage_id: uuid.UUID, move_to: uuid.UUID | None
) -> None:
    """Delete a stage; its deals go to `move_to`, which is required when it has any."""
    stages = await list_stages(session, language)
    stage = next((s for s in stages if s.id == stage_id), None)
    if stage is None:
        raise NotFound()
    if len(stages) == 1:
        raise Conflict(N_("The pipeline needs at least one stage."), field="stage_id")
    has_deals = await session.scalar(select(Deal.id).where(Deal.stage_id == stage.id).limit(1))
    if has_deals is not None:
        target = next((s for s in stages if s.id == move_to and s.id != stage.id), None)
        if target is None:
            raise InvalidInput(N_("Choose another stage of this pipeline for its deals."), field="move_to")
        await session.execute(
            update(Deal)
            .where(Deal.stage_id == stage.id)
            .values(stage_id=target.id, closed_at=utcnow() if target.outcome != "open" else None)
            .execution_options(synchronize_session=False)
        )
    stages.remove(stage)
    await session.delete(stage)
    _renumber(stages)
    await session.commit()


async def _stage(session: HubAsyncSession, stage_id: uuid.UUID) -> SalesStage:
    stage = await session.get(SalesStage, stage_id)
    if stage is None:  # another organization's stage looks like no stage at all
        raise InvalidInput(N_("There is no such stage in this pipeline."), field="stage_id")
    return stage


MAX_AMOUNT = Decimal("999999999999.99")
DEFAULT_CURRENCY = "SAR"
EMAIL = re.compile(EMAIL_PATTERN)


def _amount(value: Decimal) -> Decimal:
    if not value.is_finite() or not Decimal(0) <= value <= MAX_AMOUNT:
        raise InvalidInput(N_("Must be between 0 and {maximum}."), field="amount", maximum=MAX_AMOUNT)
    return value.quantize(Decimal("0.01"))


async def create_deal(session: HubAsyncSession, actor: CurrentUser, language: str, data: DealIn) -> Deal:
    amount = _amount(data.amount)
    if await session.get(Customer, data.customer_id) is None:
        raise InvalidInput(N_("There is no such customer."), field="customer_id")
    await _check_company(session, data.company_id)
    await _check_user(session, data.owner_id, "owner_id")
    if data.stage_id is None:
        stage = (await list_stages(session, language))[0]
    else:
        stage = await _stage(session, data.stage_id)
    deal = Deal(
        title=data.title.strip(),
        customer_id=data.customer_id,
        company_id=data.company_id,
        stage_id=stage.id,
        amount=amount,
        currency=data.currency,
        owner_id=data.owner_id or actor.id,
        expected_close_on=data.expected_close_on,
        source=data.source,
        closed_at=utcnow() if stage.outcome != "open" else None,
    )
    session.add(deal)
    await session.flush()
    _record_deal_activity(session, actor, deal, "deal_created", stage=stage.name)
    await _deal_changed(session, deal, stage)
    return deal


async def get_deal(session: HubAsyncSession, deal_id: uuid.UUID) -> Deal:
    deal = await session.get(Deal, deal_id)
    if deal is None:
        raise NotFound()
    return deal


async def update_deal(
    session: HubAsyncSession, actor: CurrentUser, deal_id: uuid.UUID, data: DealUpdate
) -> Deal:
    """Change a deal; a move to another stage is recorded on the customer's timeline, and a move to
    a won stage is the sale (its amount and date are the deal's amount and closing time)."""
    deal = await get_deal(session, deal_id)
    stage = await session.get_one(SalesStage, deal.stage_id)
    if data.company_id is not UNSET:
        await _check_company(session, data.company_id)
        deal.company_id = data.company_id
    if data.owner_id is not UNSET:
        await _check_user(session, data.owner_id, "owner_id")
        deal.owner_id = data.owner_id
    if data.amount is not UNSET:
        deal.amount = _amount(data.amount)
    for field in ("title", "currency", "expected_close_on", "source", "reason"):
        value = getattr(data, field)
        if value is not UNSET:
            setattr(deal, field, value.strip() if field == "title" else value)
    if data.stage_id is not UNSET and data.stage_id != deal.stage_id:
        previous, stage = stage, await _stage(session, data.stage_id)
        deal.stage_id = stage.id
        deal.closed_at = utcnow() if stage.outcome != "open" else None
        _record_deal_activity(
            session,
            actor,
            deal,
            "deal_stage_changed",
            **{"from": previous.name, "to": stage.name},
            outcome=stage.outcome,
        )
    await _deal_changed(session, deal, stage)
    return deal


async def delete_deal(session: HubAsyncSession, deal_id: uuid.UUID) -> None:
    deal = await get_deal(session, deal_id)
    await session.delete(deal)
    await session.flush()
    await rescore_by_id(session, deal.customer_id)
    await session.commit()


def deal_out(deal: Deal) -> DealOut:
    return DealOut(
        id=deal.id,
        title=deal.title,
        customer_id=deal.customer_id,
        company_id=deal.company_id,
        stage_id=deal.stage_id,
        amount=deal.amount,
        currency=deal.currency,
        owner_id=deal.owner_id,
        expected_close_on=deal.expected_close_on,
        source=deal.source,
        reason=deal.reason,
        closed_at=deal.closed_at,
        created_at=deal.created_at,
    )


def _record_deal_activity(
    session: HubAsyncSession, actor: CurrentUser, deal: Deal, kind: str, **details: Any
) -> None:
    details |= {"title": deal.title, "amount": str(deal.amount), "currency": deal.currency}
    session.add(
        Activity(
            customer_id=deal.customer_id, kind=kind, author_id=actor.id, deal_id=deal.id, details=details
        )
    )


async def _deal_changed(session: HubAsyncSession, deal: Deal, stage: SalesStage) -> None:
    """Rescore its customer, commit, and show the board's readers the deal as it is now."""
    push_after_commit(
        session,
        "dealUpdated",
        {"dealId": str(deal.id), "stageId": str(stage.id), "deal": deal_out(deal)},
        roles=roles_with("crm", "read"),
    )
    await rescore_by_id(session, deal.customer_id)
    await session.commit()


async def board(
    session: HubAsyncSession,
    language: str,
    *,
    owner_id: uuid.UUID | None = None,
    customer_id: uuid.UUID | None = None,
) -> list[tuple[SalesStage, list[Deal], int, dict[str, Decimal]]]:
    """The stages in order, each with its deals (newest first) and its totals per currency."""
    stages = await list_stages(session, language)
    statement = select(Deal).order_by(Deal.id.desc())
    if owner_id is not None:
        statement = statement.where(Deal.owner_id == owner_id)
    if customer_id is not None:
        statement = statement.where(Deal.customer_id == customer_id)
    by_stage: dict[uuid.UUID, list[Deal]] = {stage.id: [] for stage in stages}
    for deal in await session.scalars(statement):
        by_stage.setdefault(deal.stage_id, []).append(deal)
    columns = []
    for stage in stages:
        deals = by_stage[stage.id]
        totals: dict[str, Decimal] = {}
        for deal in deals:
            totals[deal.currency] = totals.get(deal.currency, Decimal(0)) + deal.amount
        columns.append((stage, deals, len(deals), totals))
    return columns


# Activities


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


# Timeline entries about what packages above the CRM keep (tickets, conversations, campaigns):
# each registers, at start-up, which of its kinds of entry a reader may not see.
EntryFilter = Callable[[HubAsyncSession, CurrentUser, list[Activity]], Awaitable[set[uuid.UUID]]]
_entry_filters: list[tuple[frozenset[str], EntryFilter]] = []


def timeline_entries(*kinds: str) -> Callable[[EntryFilter], EntryFilter]:
    """Register the filter that answers, for entries of these kinds, the ids a reader may not see."""

    def register(hidden: EntryFilter) -> EntryFilter:
        _entry_filters.append((frozenset(kinds), hidden))
        return hidden

    return register


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
    for kinds, filter_entries in _entry_filters:
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
    table = Activity.__table__
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
    await session.execute(
        insert_for(session, table).on_conflict_do_nothing(index_elements=["organization_id", "source_key"]),
        rows,
    )


# Settings and lead capture


async def crm_settings(session: HubAsyncSession) -> CrmSettings:
    settings = await session.scalar(select(CrmSettings))
    if settings is None:
        settings = CrmSettings(lead_origins=[])
        session.add(settings)
        await session.flush()
    return settings


async def update_crm_settings(
    session: HubAsyncSession,
    *,
    lead_origins: list[str] | None,
    scoring: ScoringRules | None,
    opt_out_keywords: list[str] | None = None,
) -> CrmSettings:
    """Change the settings; new scoring rules rescore every customer, in the background."""
    settings = await crm_settings(session)
    if lead_origins is not None:
        settings.lead_origins = list(dict.fromkeys(origin.lower() for origin in lead_origins))
    if opt_out_keywords is not None:
        settings.opt_out_keywords = list(dict.fromkeys(k.strip() for k in opt_out_keywords if k.strip()))
        _opt_out_cache.pop(session.organization_id, None)
    if scoring is not None:
        settings.scoring = msgspec.to_builtins(scoring)
        organization_id = session.organization_id

        async def rescore_everyone() -> None:
            await kick("crm.rescore_organization", organization_id=str(organization_id))

        session.after_commit(rescore_everyone)
    await session.commit()
    return settings


# Opting out: a customer who writes one of these (and nothing else) receives no more campaigns.
DEFAULT_OPT_OUT_KEYWORDS = (
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "END",
    "QUIT",
    "إلغاء",
    "إلغاء الاشتراك",
    "إيقاف",
    "توقف",
)
MAX_OPT_OUT_LENGTH = 40  # a longer message is a sentence, never an opt-out
OPT_OUT_CACHE_SECONDS = 30.0
_opt_out_cache: dict[uuid.UUID | None, tuple[float, tuple[str, ...]]] = {}


def opt_out_keywords_of(settings: CrmSettings) -> list[str]:
    return list(settings.opt_out_keywords or DEFAULT_OPT_OUT_KEYWORDS)


async def asks_to_opt_out(session: HubAsyncSession, text: str | None) -> bool:
    """Whether a customer's message is an opt-out keyword. Checked on every inbound message, so
    the keywords are kept for a while in each process, and long messages are not looked at."""
    if not text or len(text) > MAX_OPT_OUT_LENGTH:
        return False
    cached = _opt_out_cache.get(session.organization_id)
    if cached is None or cached[0] < time.monotonic():
        stored = await session.scalar(select(CrmSettings.opt_out_keywords))
        keywords = tuple(stored or DEFAULT_OPT_OUT_KEYWORDS)
        cached = (time.monotonic() + OPT_OUT_CACHE_SECONDS, keywords)
        _opt_out_cache[session.organization_id] = cached
    return is_keyword(text, cached[1])


async def organization_by_slug(runtime: Any, slug: str) -> Organization:
    async with runtime.db.system_session() as session:
        organization = await session.scalar(select(Organization).where(Organization.slug == slug))
    if organization is None:
        raise NotFound()
    return organization


async def lead_origin_allowed(runtime: Any, organization: Organization, origin: str | None) -> bool:
    """A browser's post must come from one of the organization's pages; a server's has no origin."""
    if origin is None:
        return True
    async with runtime.db.session(organization.id) as session:
        settings = await session.scalar(select(CrmSettings))
    return settings is not None and origin.lower() in settings.lead_origins


@dataclass(frozen=True, slots=True)
class CapturedLead:
    """What a lead became: a new customer and deal, or an entry on a known customer's timeline."""

    customer_id: uuid.UUID
    deal_id: uuid.UUID | None
    existing: bool


async def _earlier_lead(session: HubAsyncSession, key: str | None) -> CapturedLead | None:
    if key is None:
        return None
    earlier = await session.scalar(select(Activity).where(Activity.source_key == key))
    if earlier is None:
        return None
    return CapturedLead(
        customer_id=earlier.customer_id, deal_id=earlier.deal_id, existing=earlier.deal_id is None
    )


async def capture_lead(runtime: Any, organization: Organization, lead: LeadIn) -> CapturedLead:
    """A website form's lead. Anyone may post it, so it never changes a record it finds: a new
    person becomes a customer (with their company) and a deal in the pipeline's first stage; a
    known one (by e-mail or phone) gets only an entry on their timeline, with what the form said,
    for the team to review. A repeated key creates nothing."""
    key = f"lead:{lead.idempotency_key}" if lead.idempotency_key else None
    async with runtime.db.session(organization.id) as session:
        earlier = await _earlier_lead(session, key)
        if earlier is not None:
            return earlier
        email = _email(lead.email)
        if email is not None and not EMAIL.match(email):
            raise InvalidInput(N_("This is not a valid e-mail address."), field="email")
        phone = await _phone(session, lead.phone)
        if email is None and phone is None:
            raise InvalidInput(N_("Give an e-mail address or a phone number."), field="email")
        conditions = [
            c
            for c in (
                email and Customer.email == email,
                phone and Customer.id == phone_owner(phone, session.organization_id),
            )
            if c is not None
        ]
        customer = await session.scalar(
            select(Customer).where(or_(*conditions)).order_by(Customer.id).limit(1)
        )
        language = lead.locale or organization.default_language
        source = lead.source or translate(language, N_("website form"))
        company_name = lead.company.strip() if lead.company and lead.company.strip() else None
        deal = None
        if customer is not None:
            details: dict[str, Any] = {
                "source": source,
                "company": company_name,
                "review": True,
                "submitted": {"name": lead.name.strip(), "email": email, "phone": phone},
            }
        else:
            customer = Customer(
                name=lead.name.strip(),
                email=email,
                phone=phone,
                language=lead.locale,
                tags=[],
                attributes={},
                other_phones=[],
            )
            session.add(customer)
            await session.flush()
            company = None
            if company_name:
                company = await session.scalar(
                    select(Company).where(func.lower(Company.name) == company_name.lower())
                )
                if company is None:
                    company = Company(name=company_name)
                    session.add(company)
                    await session.flush()
                customer.company_id = company.id
            stage = (await list_stages(session, language))[0]
            deal = Deal(
                title=lead.name.strip() if not company else f"{company.name}: {lead.name.strip()}"[:200],
                customer_id=customer.id,
                company_id=company.id if company else None,
                stage_id=stage.id,
                amount=Decimal(0),
                currency=DEFAULT_CURRENCY,
                source=source,
            )
            session.add(deal)
            await session.flush()
            details = {"source": source, "company": company.name if company else None}
        session.add(
            Activity(
                customer_id=customer.id,
                kind="lead_captured",
                text=lead.message,
                deal_id=deal.id if deal else None,
                details=details,
                source_key=key,
            )
        )
        push_after_commit(
            session,
            "leadCreated",
            {
                "customerId": str(customer.id),
                "dealId": str(deal.id) if deal else None,
                "name": customer.name,
                "company": company_name,
                "source": source,
                "existing": deal is None,
            },
            roles=roles_with("crm", "write"),
        )
        await session.flush()
        await rescore(session, customer)
        captured = CapturedLead(
            customer_id=customer.id, deal_id=deal.id if deal else None, existing=deal is None
        )
        try:
            await session.commit()
        except IntegrityError:
            # The same key posted twice at once: the first one stands.
            await session.rollback()
            earlier = await _earlier_lead(session, key)
            if earlier is None:
                raise
            return earlier
        return captured


# Segments

# Conditions on what packages above the CRM keep (the inbox's conversations): each registers, at
# start-up, a function from the filter value to a condition on the customer's id.
SegmentCondition = Callable[[Any], Any]
_segment_conditions: dict[str, SegmentCondition] = {}


def segment_condition(name: str) -> Callable[[SegmentCondition], SegmentCondition]:
    def register(builder: SegmentCondition) -> SegmentCondition:
        _segment_conditions[name] = builder
        return builder

    return register


def _attribute_condition(condition: AttributeCondition, definition: AttributeDefinition) -> Any:
    field = f"filters.attributes.{condition.key}"
    stored = Customer.attributes[condition.key]
    values = condition.value if condition.op == "in" else [condition.value]
    if not isinstance(values, list) or not values:
        raise InvalidInput(N_("Give a list of values."), field=field)
    typed = [_typed(definition, value, field) for value in values]
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
        builder = _segment_conditions.get(name)
        if builder is None:
            raise InvalidInput(N_("This filter is not available here."), field=f"filters.{name}")
        conditions.append(builder(value))
    return conditions


async def segment_members(
    session: HubAsyncSession, filters: SegmentFilters, *, sendable: bool
) -> Select[tuple[uuid.UUID]]:
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


def safe_cell(value: Any) -> str:
    """A CSV cell that a spreadsheet will not run as a formula (phone numbers stay as they are)."""
    text = "" if value is None else str(value)
    risky = text[:1] in ("=", "@", "\t", "\r") or (
        text[:1] in ("+", "-") and not text[1:].replace(" ", "").isdigit()
    )
    return "'" + text if risky else text


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


# Lead scoring

# Facts about a customer kept by packages above the CRM (the inbox's last message time), each
# registered at start-up as a function of the session and the customer's id.
CustomerFact = Callable[[HubAsyncSession, uuid.UUID], Awaitable[Any]]
_facts: dict[str, CustomerFact] = {}


def customer_fact(name: str) -> Callable[[CustomerFact], CustomerFact]:
    def register(fact: CustomerFact) -> CustomerFact:
        _facts[name] = fact
        return fact

    return register


@dataclass(frozen=True)
class ConversationDigest:
    """What a conversation is about, for packages beside the inbox (a ticket opened from a chat)."""

    customer_id: uuid.UUID
    assignee_id: uuid.UUID | None
    messages: list[dict[str, Any]]  # the latest, oldest first: direction, text, kind, at


# The inbox registers the one reader at start-up; a conversation that does not exist is None.
ConversationReader = Callable[[HubAsyncSession, uuid.UUID, int], Awaitable[ConversationDigest | None]]
_conversation_readers: list[ConversationReader] = []


def conversation_reader(reader: ConversationReader) -> ConversationReader:
    _conversation_readers[:] = [reader]
    return reader


async def read_conversation(
    session: HubAsyncSession, conversation_id: uuid.UUID, latest: int = 10
) -> ConversationDigest | None:
    if not _conversation_readers:
        return None
    return await _conversation_readers[0](session, conversation_id, latest)


async def scoring_rules(session: HubAsyncSession) -> ScoringRules:
    stored = await session.scalar(select(CrmSettings.scoring))
    return msgspec.convert(stored or {}, ScoringRules)


async def rescore(session: HubAsyncSession, customer: Customer, rules: ScoringRules | None = None) -> None:
    """Work out the customer's score from the rules and keep it with its factors (not committed)."""
    rules = rules or await scoring_rules(session)
    factors: list[dict[str, Any]] = []

    def add(factor: str, points: int, **detail: Any) -> None:
        if points > 0:
            factors.append({"factor": factor, "points": points, "detail": detail})

    last_message = (
        await _facts["last_message_at"](session, customer.id) if "last_message_at" in _facts else None
    )
    if last_message is not None:
        days = (utcnow() - last_message).total_seconds() / 86400
        if days <= rules.recent_days:
            add("recent_message", rules.recent_points, days=round(days, 1))
    if "reply_rate" in _facts:
        answered, sent = await _facts["reply_rate"](session, customer.id)
        if sent:
            add("reply_rate", round(rules.reply_points * answered / sent), answered=answered, sent=sent)
    stages = list(await session.scalars(select(SalesStage).order_by(SalesStage.position, SalesStage.id)))
    open_stages = [stage.id for stage in stages if stage.outcome == "open"]
    outcome = {stage.id: stage.outcome for stage in stages}
    deals = list(await session.scalars(select(Deal).where(Deal.customer_id == customer.id).order_by(Deal.id)))
    reached = [open_stages.index(deal.stage_id) for deal in deals if deal.stage_id in open_stages]
    if reached and open_stages:
        furthest = max(reached)
        name = next(stage.name for stage in stages if stage.id == open_stages[furthest])
        add("deal_stage", round(rules.stage_points * (furthest + 1) / len(open_stages)), stage=name)
    won = [deal for deal in deals if outcome.get(deal.stage_id) == "won"]
    if won:
        add("deal_won", rules.won_points, deals=len(won))
    amount = sum((deal.amount for deal in deals if outcome.get(deal.stage_id) != "lost"), Decimal(0))
    add(
        "deal_amount",
        min(rules.amount_max, int(amount // rules.amount_step) * rules.amount_points),
        amount=str(amount),
    )
    written = await session.scalar(
        select(func.count())
        .select_from(Activity)
        .where(Activity.customer_id == customer.id, Activity.kind.in_(TEAM_ACTIVITIES))
    )
    add(
        "activities",
        min(rules.activity_max, int(written or 0) * rules.activity_points),
        count=int(written or 0),
    )
    hot = {source.lower() for source in rules.hot_sources}
    sources = [deal.source for deal in deals if deal.source and deal.source.lower() in hot]
    if sources:
        add("source", rules.source_points, source=sources[-1])
    customer.score = min(100, sum(factor["points"] for factor in factors))
    customer.score_factors = factors


async def rescore_by_id(session: HubAsyncSession, customer_id: uuid.UUID) -> None:
    customer = await session.get(Customer, customer_id)
    if customer is not None:
        await rescore(session, customer)


RESCORE_BATCH = 500
TEAM_ACTIVITIES = ("note", "call", "meeting", "task")


async def rescore_organization(runtime: Any, organization_id: uuid.UUID, *, only_recent: bool = False) -> int:
    """Rescore an organization's customers a batch at a time (after its rules change, or, with
    `only_recent`, those whose recent-message points may have lapsed or become due)."""
    done, after = 0, None
    while True:
        async with runtime.db.session(organization_id) as session:
            rules = await scoring_rules(session)
            statement = select(Customer).order_by(Customer.id).limit(RESCORE_BATCH)
            if after is not None:
                statement = statement.where(Customer.id > after)
            if only_recent and "last_contacted_after" in _segment_conditions:
                since = utcnow() - timedelta(days=rules.recent_days + 1)
                statement = statement.where(
                    or_(
                        cast(Customer.score_factors, String).like('%"recent_message"%'),
                        _segment_conditions["last_contacted_after"](since),
                    )
                )
            batch = list(await session.scalars(statement))
            for customer in batch:
                await rescore(session, customer, rules)
            await session.commit()
        done += len(batch)
        if len(batch) < RESCORE_BATCH:
            return done
        after = batch[-1].id


# Importing customers from CSV

IMPORT_BATCH = 1000
MAX_IMPORT_ERRORS = 1000
TRUE, FALSE = {"yes", "true", "1", "y", "نعم"}, {"no", "false", "0", "n", "", "لا"}


async def start_import(session: HubAsyncSession, actor: CurrentUser, data: ImportRequest) -> CustomerImport:
    media = await session.get(Media, data.media_id)
    if media is None or media.content_type not in ("text/csv", "text/plain"):
        raise InvalidInput(N_("Upload a CSV file first."), field="media_id")
    fields = list(data.mapping.values())
    if "phone" not in fields and "email" not in fields:
        raise InvalidInput(N_("Map a column to the phone number or the e-mail address."), field="mapping")
    if len(set(fields)) != len(fields):
        raise InvalidInput(N_("Each field may come from one column only."), field="mapping")
    keys = {field.split(".", 1)[1] for field in fields if field.startswith("attributes.")}
    known = set(await session.scalars(select(AttributeDefinition.key)))
    for key in sorted(keys - known):
        raise InvalidInput(N_("There is no attribute named {key}."), field="mapping", key=key)
    job = CustomerImport(
        media_id=media.id,
        mapping=dict(data.mapping),
        on_duplicate=data.on_duplicate,
        started_by=actor.id,
        errors=[],
    )
    session.add(job)
    await session.flush()
    organization_id, job_id = session.organization_id, job.id

    async def run() -> None:
        await kick("crm.run_import", organization_id=str(organization_id), import_id=str(job_id))

    session.after_commit(run)
    await session.commit()
    return job


async def get_import(session: HubAsyncSession, import_id: uuid.UUID) -> CustomerImport:
    job = await session.get(CustomerImport, import_id)
    if job is None:
        raise NotFound()
    return job


TYPE_MISMATCH = N_("This value does not fit the attribute's type ({kind}).")


def _import_row(
    values: dict[str, str], region: str | None, definitions: dict[str, AttributeDefinition]
) -> tuple[dict[str, Any] | None, tuple[str, str, dict[str, str]] | None]:
    """The customer fields of one row, or the field at fault and why."""
    out: dict[str, Any] = {"attributes": {}}
    for field, raw in values.items():
        text = raw.strip()
        if field == "name":
            out["name"] = text[:200]
        elif field == "phone" and text:
            phone = read_phone(text, region)
            if phone is None:
                return None, ("phone", N_("This is not a valid phone number."), {})
            out["phone"] = phone
        elif field == "email" and text:
            if not EMAIL.match(text) or len(text) > 254:
                return None, ("email", N_("This is not a valid e-mail address."), {})
            out["email"] = text.lower()
        elif field == "language" and text:
            if text.lower() not in ("ar", "en"):
                return None, ("language", N_("Use ar or en."), {})
            out["language"] = text.lower()
        elif field == "tags":
            out["tags"] = sorted({tag.strip()[:50] for tag in text.split(";") if tag.strip()})
        elif field == "opted_out":
            if text.lower() not in TRUE | FALSE:
                return None, ("opted_out", N_("Use yes or no."), {})
            out["opted_out"] = text.lower() in TRUE
        elif field == "company" and text:
            out["company"] = text[:200]
        elif field.startswith("attributes.") and text:
            definition = definitions[field.split(".", 1)[1]]
            value: Any = text
            if definition.kind == "number":
                try:
                    value = float(text) if "." in text else int(text)
                except ValueError:
                    return None, (field, TYPE_MISMATCH, {"kind": definition.kind})
            try:
                out["attributes"][definition.key] = _typed(definition, value, field)
            except InvalidInput:
                return None, (field, TYPE_MISMATCH, {"kind": definition.kind})
    if not out.get("phone") and not out.get("email"):
        return None, ("phone", N_("Give an e-mail address or a phone number."), {})
    out.setdefault("name", out.get("phone") or out.get("email"))
    return out, None


async def run_import(runtime: Any, organization_id: uuid.UUID, import_id: uuid.UUID) -> None:
    """Read the file a batch of rows at a time, each batch in its own transaction, so memory stays
    flat; push `importProgress` to whoever started it after each batch."""
    async with runtime.db.session(organization_id) as session:
        job = await get_import(session, import_id)
        if job.status != "queued":
            return  # already run (the task came twice)
        job.status = "running"
        media = await session.get_one(Media, job.media_id)
        region = await session.scalar(select(Organization.default_region))
        definitions = {d.key: d for d in await session.scalars(select(AttributeDefinition))}
        mapping, on_duplicate, starter, key = dict(job.mapping), job.on_duplicate, job.started_by, media.key
        await session.commit()
    counts = {"rows": 0, "created": 0, "updated": 0, "skipped": 0, "failed": 0}
    errors: list[dict[str, Any]] = []
    try:
        with storage.media_store(runtime.settings).open(key) as raw:
            reader = csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""))
            missing = [column for column in mapping if column not in (reader.fieldnames or [])]
            if missing:
                raise InvalidInput(N_("The file has no column {column}."), field="mapping", column=missing[0])
            batch: list[tuple[int, dict[str, Any]]] = []
            batches = 0
            for line, row in enumerate(reader, start=2):
                counts["rows"] += 1
                fields, fault = _import_row(
                    {field: row.get(column) or "" for column, field in mapping.items()}, region, definitions
                )
                if fault is not None:
                    counts["failed"] += 1
                    if len(errors) < MAX_IMPORT_ERRORS:
                        errors.append(
                            {"row": line, "field": fault[0], "reason": fault[1], "params": fault[2]}
                        )
                    continue
                batch.append((line, fields))  # type: ignore[arg-type]
                if len(batch) == IMPORT_BATCH:
                    await _import_batch(runtime, organization_id, batch, on_duplicate, counts)
                    batch = []
                    batches += 1
                    if batches in ANALYZE_AFTER_BATCHES:
                        await _refresh_statistics(runtime)
                    await _import_progress(runtime, organization_id, import_id, starter, counts, errors)
            if batch:
                await _import_batch(runtime, organization_id, batch, on_duplicate, counts)
        status = "done"
    except InvalidInput as error:
        status = "failed"
        params = {name: str(value) for name, value in error.params.items()}
        errors.insert(0, {"row": 1, "field": error.field, "reason": error.message, "params": params})
    await _import_progress(runtime, organization_id, import_id, starter, counts, errors, status=status)


# PostgreSQL plans the duplicate look-ups by the table's statistics; a large import into a young
# table outgrows them long before autovacuum notices, and a plan made for a small table would scan
# the whole table for every batch. Refreshed as the table grows fourfold.
ANALYZE_AFTER_BATCHES = (1, 4, 16, 64, 256)


async def _refresh_statistics(runtime: Any) -> None:
    if not runtime.db.is_postgres:
        return
    async with runtime.db.system_session() as session:
        await session.execute(sql("ANALYZE customers"))
        await session.commit()


async def _import_batch(
    runtime: Any,
    organization_id: uuid.UUID,
    batch: list[tuple[int, dict[str, Any]]],
    on_duplicate: str,
    counts: dict[str, int],
) -> None:
    async with runtime.db.session(organization_id) as session:
        phones = [fields["phone"] for _, fields in batch if fields.get("phone")]
        emails = [fields["email"] for _, fields in batch if fields.get("email")]
        existing: dict[str, Customer] = {}
        for column, values in ((Customer.phone, phones), (Customer.email, emails)):
            if values:
                for customer in await session.scalars(select(Customer).where(column.in_(values))):
                    existing[customer.phone or ""] = customer
                    existing[customer.email or ""] = customer
        existing.pop("", None)
        if phones:  # numbers kept from merged duplicates belong to their customer too
            # Two plain look-ups, not a join: a join's plan may scan every customer for each batch.
            kept = dict(
                (
                    await session.execute(
                        select(CustomerPhone.phone, CustomerPhone.customer_id).where(
                            CustomerPhone.phone.in_(phones)
                        )
                    )
                ).all()
            )
            if kept:
                owners = {
                    c.id: c
                    for c in await session.scalars(
                        select(Customer).where(Customer.id.in_(set(kept.values())))
                    )
                }
                existing.update({number: owners[owner] for number, owner in kept.items() if owner in owners})
        companies: dict[str, uuid.UUID] = {}
        names = {fields["company"].lower() for _, fields in batch if fields.get("company")}
        if names:
            for company in await session.scalars(select(Company).where(func.lower(Company.name).in_(names))):
                companies[company.name.lower()] = company.id
        new_rows: list[dict[str, Any]] = []
        pending: dict[str, dict[str, Any]] = {}  # this batch's new rows, by phone and e-mail
        for _line, fields in batch:
            contact = [value for value in (fields.get("phone"), fields.get("email")) if value]
            company_name = fields.pop("company", None)
            if company_name and company_name.lower() not in companies:
                company = Company(name=company_name)
                session.add(company)
                await session.flush()
                companies[company_name.lower()] = company.id
            company_id = companies.get(company_name.lower()) if company_name else None
            found = next((existing[value] for value in contact if value in existing), None)
            # Earlier batches are in the database by now; earlier rows of this one are pending.
            repeated = any(value in pending for value in contact)
            if found is None and not repeated:
                now = utcnow()
                row = {
                    "id": new_id(),
                    "organization_id": organization_id,
                    "name": fields["name"],
                    "phone": fields.get("phone"),
                    "email": fields.get("email"),
                    "language": fields.get("language"),
                    "opted_out": fields.get("opted_out", False),
                    "tags": fields.get("tags", []),
                    "attributes": fields["attributes"],
                    "company_id": company_id,
                    "score": 0,
                    "score_factors": [],
                    "created_at": now,
                    "updated_at": now,
                }
                new_rows.append(row)
                for value in contact:
                    pending[value] = row
                counts["created"] += 1
            elif on_duplicate == "update" and found is None:
                row = next(pending[value] for value in contact if value in pending)  # earlier in this batch
                for field in ("name", "language", "opted_out"):
                    if field in fields:
                        row[field] = fields[field]
                row["tags"] = sorted(set(row["tags"]) | set(fields.get("tags", [])))
                row["attributes"] = {**row["attributes"], **fields["attributes"]}
                counts["updated"] += 1
            elif on_duplicate == "update" and found is not None:
                for field in ("name", "language", "opted_out"):
                    if field in fields:
                        setattr(found, field, fields[field])
                for field in ("phone", "email"):
                    value = fields.get(field)
                    if value and getattr(found, field) is None and value not in existing:
                        setattr(found, field, value)
                        existing[value] = found
                if "tags" in fields:
                    found.tags = sorted(set(found.tags or []) | set(fields["tags"]))
                found.attributes = {**(found.attributes or {}), **fields["attributes"]}
                found.company_id = found.company_id or company_id
                counts["updated"] += 1
            else:
                counts["skipped"] += 1
        if new_rows:
            # One multi-row INSERT for the batch rather than the unit of work, a tenth of the cost;
            # the rows name their organization (and on PostgreSQL row security applies).
            connection = await session.connection()
            await connection.execute(insert(Customer.__table__), new_rows)
        await session.commit()


async def _import_progress(
    runtime: Any,
    organization_id: uuid.UUID,
    import_id: uuid.UUID,
    starter: uuid.UUID | None,
    counts: dict[str, int],
    errors: list[dict[str, Any]],
    *,
    status: str = "running",
) -> None:
    async with runtime.db.session(organization_id) as session:
        job = await get_import(session, import_id)
        for name, value in counts.items():
            setattr(job, name, value)
        job.errors = list(errors)
        job.status = status
        if status != "running":
            job.finished_at = utcnow()
        push_after_commit(
            session,
            "importProgress",
            {"importId": str(import_id), "status": status, **counts},
            user_ids=[starter] if starter else [],
        )
        await session.commit()
