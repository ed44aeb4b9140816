"""What the CRM publishes: the socket events it pushes (its domain events to other packages are
its hooks, `crm.hooks`, which the packages above join)."""

from __future__ import annotations

import uuid
from typing import ClassVar

import msgspec

from crm.schemas import DealOut
from hub.realtime import SocketEvent, socket_event


@socket_event
class LeadCreated(SocketEvent, kw_only=True):
    """A website form brought a lead: a new customer and deal, or an entry on a known customer."""

    name: ClassVar[str] = "leadCreated"
    customer_id: uuid.UUID
    deal_id: uuid.UUID | None
    customer_name: str | None = msgspec.field(name="name")
    company: str | None
    source: str | None
    existing: bool


@socket_event
class DealUpdated(SocketEvent, kw_only=True):
    """A deal moved to another stage of the pipeline."""

    name: ClassVar[str] = "dealUpdated"
    deal_id: uuid.UUID
    stage_id: uuid.UUID
    deal: DealOut


@socket_event
class ImportProgress(SocketEvent, kw_only=True):
    """To whoever started it: a customer import's counts so far, and its status."""

    name: ClassVar[str] = "importProgress"
    import_id: uuid.UUID
    status: str
    rows: int
    created: int
    updated: int
    skipped: int
    failed: int
