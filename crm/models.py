"""Customers (the identity of every person the hub talks to), companies, the sales pipeline and
the activity timeline."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.db import Base, TenantMixin


class Company(Base, TenantMixin):
    __tablename__ = "companies"
    __table_args__ = (UniqueConstraint("organization_id", "domain"),)

    name: Mapped[str] = mapped_column(String(200))
    domain: Mapped[str | None] = mapped_column(String(253))  # lower case, without scheme or www.
    sector: Mapped[str | None] = mapped_column(String(100))
    size: Mapped[int | None]  # people employed


class Customer(Base, TenantMixin):
    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("organization_id", "phone"),
        UniqueConstraint("organization_id", "email"),
    )

    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(20))  # E.164
    email: Mapped[str | None] = mapped_column(String(254))  # lower case
    language: Mapped[str | None] = mapped_column(String(5))
    opted_out: Mapped[bool] = mapped_column(default=False)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Values of the organization's attribute definitions, by key, as JSON (dates as ISO strings).
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    owner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    company_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("companies.id", ondelete="SET NULL"), index=True
    )
    # Lead score, 0 to 100, and the factors that made it: [{"factor", "points", "detail"}].
    score: Mapped[int] = mapped_column(default=0)
    score_factors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Numbers kept from merged duplicates; few, and shown with the customer, so loaded with it.
    other_phones: Mapped[list[CustomerPhone]] = relationship(
        lazy="selectin", order_by="CustomerPhone.phone", cascade="all, delete-orphan"
    )


class CustomerPhone(Base, TenantMixin):
    """Another number of a customer, kept when a duplicate record was merged into it, so the
    person's messages from that number still reach the same customer."""

    __tablename__ = "customer_phones"
    __table_args__ = (UniqueConstraint("organization_id", "phone"),)

    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    phone: Mapped[str] = mapped_column(String(20))  # E.164


class CustomerIdentity(Base, TenantMixin):
    """How a channel names a person who has no phone number there (an API sender id, say)."""

    __tablename__ = "customer_identities"
    __table_args__ = (UniqueConstraint("organization_id", "channel_id", "external_id"),)

    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))


class AttributeDefinition(Base, TenantMixin):
    """A custom field an organization keeps on its customers."""

    __tablename__ = "customer_attribute_definitions"
    __table_args__ = (UniqueConstraint("organization_id", "key"),)

    key: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(8))  # text, number, date, choice
    choices: Mapped[list[str]] = mapped_column(JSON, default=list)


class SalesStage(Base, TenantMixin):
    __tablename__ = "sales_stages"

    name: Mapped[str] = mapped_column(String(100))
    position: Mapped[int]
    # open stages hold deals in progress; a deal moved to a won or lost stage is closed.
    outcome: Mapped[str] = mapped_column(String(8), default="open")


class Deal(Base, TenantMixin):
    __tablename__ = "deals"
    __table_args__ = (Index("ix_deals_org_stage", "organization_id", "stage_id", "id"),)

    title: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    company_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("companies.id", ondelete="SET NULL"))
    stage_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sales_stages.id", ondelete="RESTRICT"))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal(0))
    currency: Mapped[str] = mapped_column(String(3))
    owner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    expected_close_on: Mapped[date | None]
    source: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(String(500))  # why it was won or lost
    closed_at: Mapped[datetime | None]  # when it reached a won or lost stage


class Activity(Base, TenantMixin):
    """One entry of a customer's timeline: written by the team, or recorded by the hub itself."""

    __tablename__ = "customer_activities"
    __table_args__ = (
        Index("ix_customer_activities_timeline", "organization_id", "customer_id", "id"),
        # What an entry the hub recorded stands for, so a repeated event records it once.
        UniqueConstraint("organization_id", "source_key"),
    )

    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    # note, call, meeting, task (by people); conversation_started, deal_stage_changed, ... (by the hub)
    kind: Mapped[str] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(Text)
    author_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    deal_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("deals.id", ondelete="SET NULL"))
    due_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    # What the hub recorded with it (stage names, a conversation id...), for the timeline to show.
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source_key: Mapped[str | None] = mapped_column(String(120))


class CrmSettings(Base, TenantMixin):
    __tablename__ = "crm_settings"
    __table_args__ = (UniqueConstraint("organization_id"),)

    # Web pages allowed to post the lead form from a browser (exact origins, https://example.com).
    lead_origins: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The organization's lead scoring rules; what it leaves out takes the defaults.
    scoring: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # A customer whose whole message is one of these stops receiving campaigns; empty: the defaults.
    opt_out_keywords: Mapped[list[str]] = mapped_column(JSON, default=list)


class Segment(Base, TenantMixin):
    """A saved filter over customers; campaigns send to its sendable members."""

    __tablename__ = "customer_segments"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    name: Mapped[str] = mapped_column(String(200))
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class CustomerImport(Base, TenantMixin):
    """A CSV file of customers being read into the CRM, with what became of each row."""

    __tablename__ = "customer_imports"

    media_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"))
    # CSV column -> customer field (name, phone, email, language, tags, opted_out, company,
    # attributes.<key>); other columns are ignored.
    mapping: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    on_duplicate: Mapped[str] = mapped_column(String(8))  # skip, update
    status: Mapped[str] = mapped_column(String(8), default="queued")  # queued, running, done, failed
    started_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    rows: Mapped[int] = mapped_column(default=0)
    created: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # the first 1,000
    finished_at: Mapped[datetime | None]
