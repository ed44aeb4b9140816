"""Who wrote: the customer behind a sender on a channel (found by E.164 number or the channel's
own id, made when new), and reading phone numbers by the organization's country."""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from crm.models import Customer, CustomerIdentity, CustomerPhone
from crm.services.scoring import recent_message_factor
from hub.db import HubAsyncSession, new_id, on_postgres, row_values, table_of

# Identity from channels


async def customer_for_sender(
    session: HubAsyncSession,
    *,
    channel_id: uuid.UUID,
    sender: str,
    sender_is_phone: bool,
    display_name: str | None,
    looked_up: bool = False,
) -> Customer:
    """The customer behind an inbound sender, created on first contact.

    By phone number when there is one, so one person writing to two of the organization's
    numbers is one customer; otherwise by the channel's own id of the sender. `looked_up`: the
    caller just looked for them and found nobody, so the first look is skipped.
    """
    for attempt in range(2):
        if attempt or not looked_up:
            found = await _find(
                session, channel_id=channel_id, sender=sender, sender_is_phone=sender_is_phone
            )
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


async def new_customer_for_sender(
    session: HubAsyncSession,
    *,
    channel_id: uuid.UUID,
    sender: str,
    sender_is_phone: bool,
    display_name: str | None,
    at: datetime,
) -> Customer | None:
    """A first contact's customer, made with plain statements (the busiest write of a campaign's
    replies: no unit of work, no savepoint) and already scored for having written just now.
    None when a concurrent first message of the same sender made them first: read them then.

    The object returned is a snapshot, not in the session."""
    organization_id = session.organization_id
    assert organization_id is not None  # a tenant session
    factor = await recent_message_factor(session)
    customer = Customer(
        id=new_id(),
        organization_id=organization_id,
        name=(display_name or sender).strip()[:200],
        phone=sender if sender_is_phone else None,
        email=None,
        language=None,
        opted_out=False,
        tags=[],
        attributes={},
        owner_id=None,
        company_id=None,
        score=min(100, factor["points"]) if factor else 0,
        score_factors=[factor] if factor else [],
        created_at=at,
        updated_at=at,
    )
    statements = _first_contact_statements("postgresql" if on_postgres(session) else "sqlite")
    connection = await session.connection()
    if (await connection.execute(statements["customer"], row_values(customer))).first() is None:
        return None  # the number is taken: by a concurrent first message
    if not sender_is_phone:
        identity = {
            "id": new_id(),
            "organization_id": organization_id,
            "customer_id": customer.id,
            "channel_id": channel_id,
            "external_id": sender,
            "created_at": at,
            "updated_at": at,
        }
        if (await connection.execute(statements["identity"], identity)).first() is None:
            # A concurrent first message named this sender first: this customer is nobody.
            await connection.execute(statements["forget"], {"id": customer.id, "org": organization_id})
            return None
    return customer


@functools.cache
def _first_contact_statements(dialect: str) -> dict[str, Any]:
    """Built once per database kind: an INSERT that does nothing on a taken number or sender id,
    and says so by returning no row."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    customers, identities = table_of(Customer), table_of(CustomerIdentity)
    return {
        "customer": insert(customers)
        .on_conflict_do_nothing(index_elements=["organization_id", "phone"])
        .returning(customers.c.id),
        "identity": insert(identities)
        .on_conflict_do_nothing(index_elements=["organization_id", "channel_id", "external_id"])
        .returning(identities.c.id),
        "forget": delete(customers).where(
            customers.c.id == bindparam("id", type_=customers.c.id.type),
            customers.c.organization_id == bindparam("org", type_=customers.c.organization_id.type),
        ),
    }


def phone_owner(phone: Any, organization: Any) -> Any:
    """The id of the organization's customer with this number: its own phone, else a number kept
    from a merged duplicate. Two index look-ups; both name the organization."""
    customers, others = table_of(Customer).alias("owner"), table_of(CustomerPhone)
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
    assert organization_id is not None  # a tenant session
    return await session.scalar(
        sender_query(
            organization_id=organization_id,
            channel_id=channel_id,
            sender=sender,
            sender_is_phone=sender_is_phone,
        )
    )
