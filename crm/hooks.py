"""What the CRM offers the packages above it, which register at start-up: moving their rows when
two customers merge, hiding timeline entries from readers, segment conditions on their own data,
facts for lead scoring, and reading a conversation's gist (the inbox's)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from crm.models import Activity
from hub.auth import CurrentUser
from hub.db import HubAsyncSession

# What packages above the CRM (the inbox, tickets) do to move their rows from one customer to
# another; they register at start-up, so a merge keeps everything in one transaction.
CustomerMover = Callable[[HubAsyncSession, uuid.UUID, uuid.UUID], Awaitable[None]]
customer_movers: list[CustomerMover] = []


def on_customer_merge(mover: CustomerMover) -> CustomerMover:
    customer_movers.append(mover)
    return mover


# Timeline entries about what packages above the CRM keep (tickets, conversations, campaigns):
# each registers, at start-up, which of its kinds of entry a reader may not see.
EntryFilter = Callable[[HubAsyncSession, CurrentUser, list[Activity]], Awaitable[set[uuid.UUID]]]
entry_filters: list[tuple[frozenset[str], EntryFilter]] = []


def timeline_entries(*kinds: str) -> Callable[[EntryFilter], EntryFilter]:
    """Register the filter that answers, for entries of these kinds, the ids a reader may not see."""

    def register(hidden: EntryFilter) -> EntryFilter:
        entry_filters.append((frozenset(kinds), hidden))
        return hidden

    return register


# Conditions on what packages above the CRM keep (the inbox's conversations): each registers, at
# start-up, a function from the filter value to a condition on the customer's id.
SegmentCondition = Callable[[Any], Any]
segment_condition_builders: dict[str, SegmentCondition] = {}


def segment_condition(name: str) -> Callable[[SegmentCondition], SegmentCondition]:
    def register(builder: SegmentCondition) -> SegmentCondition:
        segment_condition_builders[name] = builder
        return builder

    return register


# Facts about a customer kept by packages above the CRM (the inbox's last message time), each
# registered at start-up as a function of the session and the customer's id.
CustomerFact = Callable[[HubAsyncSession, uuid.UUID], Awaitable[Any]]
customer_facts: dict[str, CustomerFact] = {}


def customer_fact(name: str) -> Callable[[CustomerFact], CustomerFact]:
    def register(fact: CustomerFact) -> CustomerFact:
        customer_facts[name] = fact
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
