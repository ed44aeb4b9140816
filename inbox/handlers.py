"""What the inbox does for other packages: it is the channels' inbound sink."""

from __future__ import annotations

from channels.adapters import InboundMessage, Receipt, StoredInbound, register_inbound_sink
from hub.runtime import current
from inbox import services


class InboxSink:
    """Stores what channels receive, so they can acknowledge with the stored ids."""

    async def store_message(self, message: InboundMessage) -> StoredInbound:
        return await services.store_inbound(current(), message)

    async def apply_receipt(self, receipt: Receipt) -> None:
        await services.apply_receipt(current(), receipt)


register_inbound_sink(InboxSink())
