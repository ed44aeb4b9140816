"""What billing offers the packages above the kernel: a registry of how much of a counted limit
an organization holds now (the channels package counts its WhatsApp numbers and API channels),
joined at start-up by their handlers modules."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from hub.db import HubAsyncSession

HeldCount = Callable[[HubAsyncSession], Awaitable[int]]
held_counts: dict[str, HeldCount] = {}


def counts_held(limit: str) -> Callable[[HeldCount], HeldCount]:
    def register(count: HeldCount) -> HeldCount:
        held_counts[limit] = count
        return count

    return register
