"""Merging two records of one person into one, with everything the packages above keep."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update

from crm.hooks import customer_movers
from crm.models import Activity, Customer, CustomerIdentity, CustomerPhone, Deal
from crm.services.customers import get_customer
from hub.auth import CurrentUser
from hub.db import HubAsyncSession
from hub.errors import InvalidInput
from hub.i18n import N_


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
    for mover in customer_movers:
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
