"""What channels offer the packages above them, which register at start-up: the inbox's sink that
stores what arrives (so a channel can answer with the stored ids without importing the inbox),
and listeners that also hear every receipt (campaigns follow their own sends)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from channels.adapters import InboundMessage, Receipt, StoredInbound


class InboundSink(Protocol):
    async def store_message(self, message: InboundMessage) -> StoredInbound: ...

    async def apply_receipt(self, receipt: Receipt) -> None: ...


ReceiptListener = Callable[[Receipt], Awaitable[None]]

_sink: list[InboundSink] = []
_receipt_listeners: list[ReceiptListener] = []


def register_inbound_sink(sink: InboundSink) -> None:
    """Called once at start-up by the package that stores conversations (the inbox)."""
    _sink[:] = [sink]


def inbound_sink() -> InboundSink:
    if not _sink:
        raise RuntimeError("no inbound sink registered: the inbox package is not loaded")
    return _sink[0]


def listen_to_receipts(listener: ReceiptListener) -> ReceiptListener:
    """Also hear every receipt (campaigns follow their own sends); registered once at import."""
    if listener not in _receipt_listeners:
        _receipt_listeners.append(listener)
    return listener


async def apply_receipt(receipt: Receipt) -> None:
    """A receipt from a channel, for the conversation's message and for whoever else listens."""
    await inbound_sink().apply_receipt(receipt)
    for listener in _receipt_listeners:
        await listener(receipt)
