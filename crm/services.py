"""Customer rules: phone numbers in E.164 and one customer per person, across channels."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError

from crm.models import Customer, CustomerIdentity
from hub.db import HubAsyncSession


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
                    name=(display_name or sender).strip()[:200], phone=sender if sender_is_phone else None
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


def sender_query(*, channel_id: uuid.UUID, sender: str, sender_is_phone: bool) -> Select[Any]:
    """The select of the customer behind a sender, for callers to join more to in the same query."""
    if sender_is_phone:
        return select(Customer).where(Customer.phone == sender)
    return (
        select(Customer)
        .join(CustomerIdentity, CustomerIdentity.customer_id == Customer.id)
        .where(CustomerIdentity.channel_id == channel_id, CustomerIdentity.external_id == sender)
    )


async def _find(
    session: HubAsyncSession, *, channel_id: uuid.UUID, sender: str, sender_is_phone: bool
) -> Customer | None:
    return await session.scalar(
        sender_query(channel_id=channel_id, sender=sender, sender_is_phone=sender_is_phone)
    )
