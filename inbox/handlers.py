"""What the inbox does for other packages: it is the channels' inbound sink, and it moves its
conversations when the CRM merges two customers."""

from __future__ import annotations

import uuid

from channels.adapters import InboundMessage, Receipt, StoredInbound, register_inbound_sink
from crm.services import on_customer_merge
from hub.db import HubAsyncSession
from hub.runtime import current
from inbox import services


class InboxSink:
    """Stores what channels receive, so they can acknowledge with the stored ids."""

    async def store_message(self, message: InboundMessage) -> StoredInbound:
        return await services.store_inbound(current(), message)

    async def apply_receipt(self, receipt: Receipt) -> None:
        await services.apply_receipt(current(), receipt)


register_inbound_sink(InboxSink())


@on_customer_merge
async def move_conversations(
    session: HubAsyncSession, from_customer: uuid.UUID, to_customer: uuid.UUID
) -> None:
    await services.move_conversations(session, from_customer, to_customer)
