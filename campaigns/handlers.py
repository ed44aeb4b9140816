"""What campaigns do when other packages' events arrive: receipts move recipients on, a reply
marks them replied, and a merged customer keeps their campaign history."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import update

from campaigns import sending
from campaigns.models import CampaignRecipient
from channels.adapters import Receipt
from channels.hooks import listen_to_receipts
from crm.hooks import on_customer_merge, timeline_entries
from crm.models import Activity
from hub import events
from hub.auth import CurrentUser
from hub.db import HubAsyncSession, moment_of
from hub.permissions import can
from hub.runtime import current
from inbox.events import CustomersWrote, MessageReceived


@listen_to_receipts
async def follow_receipt(receipt: Receipt) -> None:
    await sending.follow_receipt(
        current(),
        receipt.organization_id,
        receipt.channel_id,
        receipt.external_id,
        receipt.status,
        receipt.reason,
    )


@events.hints(MessageReceived)  # every inbound message: no outbox row each
async def messages_received(received: list[MessageReceived]) -> None:
    """Customers who just wrote, a few at a time: their campaign messages were replied to. A
    customer made by their message has received no campaign."""
    replied = [event for event in received if not event.customer_created]
    for organization_id, theirs in events.by_organization(replied).items():
        await sending.customers_replied(
            current(), organization_id, {event.customer_id: moment_of(event.message_id) for event in theirs}
        )


@events.handles(CustomersWrote, name="campaigns.customers_wrote")
async def customers_wrote(event: CustomersWrote) -> None:
    """The durable catch-up of the hint above, for replies whose hint died with its process."""
    last_written: dict[uuid.UUID, datetime] = {}
    for wrote in event.conversations:  # a customer may have written in several conversations
        last_written[wrote.customer_id] = max(
            wrote.last_at, last_written.get(wrote.customer_id, wrote.last_at)
        )
    await sending.customers_replied(current(), event.organization_id, last_written)


@on_customer_merge
async def move_recipients(session: HubAsyncSession, from_customer: uuid.UUID, to_customer: uuid.UUID) -> None:
    await session.execute(
        update(CampaignRecipient)
        .where(CampaignRecipient.customer_id == from_customer)
        .values(customer_id=to_customer)
        .execution_options(synchronize_session=False)
    )


@timeline_entries("campaign_message", "campaign_replied")
async def campaign_entries_hidden(
    _session: HubAsyncSession, reader: CurrentUser, entries: list[Activity]
) -> set[uuid.UUID]:
    """Campaign entries are for those who read campaigns (admins and managers)."""
    return set() if can(reader.role, "campaigns", "read") else {entry.id for entry in entries}
