"""Tickets, their comments and attachments, their timeline, SLA policies and ticket settings."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub.db import Base, HubSession, TenantMixin

# The two SLA targets a ticket is held to, and the column that says when each was met.
TARGETS = ("first_response", "resolution")
MET_AT = {"first_response": "first_responded_at", "resolution": "resolved_at"}


class Ticket(Base, TenantMixin):
    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("organization_id", "number"),
        UniqueConstraint("organization_id", "source_message_id"),
        Index("ix_tickets_org_status", "organization_id", "status", "id"),
        Index("ix_tickets_org_assignee", "organization_id", "assignee_id", "id"),
    )

    number: Mapped[int]  # shown to people: #1, #2 ... within the organization
    kind: Mapped[str] = mapped_column(String(8), default="support")  # support, sales
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="open")
    priority: Mapped[str] = mapped_column(String(8), default="normal")
    customer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    conversation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), index=True
    )
    # The inbound message a ticket was created from automatically; one ticket per message.
    source_message_id: Mapped[uuid.UUID | None]
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The conversation's latest messages when the ticket was opened from it.
    context: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    first_responded_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    # SLA: when each target falls due and when 80% of it has passed, in business time; while the
    # clock is paused (waiting on the customer, or resolved) the due times are empty and the
    # business seconds left are kept instead.
    sla_policy_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("sla_policies.id", ondelete="SET NULL")
    )
    first_response_due_at: Mapped[datetime | None]
    first_response_warn_at: Mapped[datetime | None]
    first_response_left: Mapped[float | None]
    first_response_warned_at: Mapped[datetime | None]
    first_response_breached_at: Mapped[datetime | None]
    resolution_due_at: Mapped[datetime | None]
    resolution_warn_at: Mapped[datetime | None]
    resolution_left: Mapped[float | None]
    resolution_warned_at: Mapped[datetime | None]
    resolution_breached_at: Mapped[datetime | None]
    # The next moment a warning or breach falls due on a running clock, for the sweep's index;
    # kept by the flush hook below, never set by hand.
    sla_check_at: Mapped[datetime | None] = mapped_column(index=True)

    def met_at(self, target: str) -> datetime | None:
        return getattr(self, MET_AT[target])

    def running(self, target: str) -> bool:
        """The target's clock runs: not paused, not met, not breached."""
        return (
            getattr(self, f"{target}_left") is None
            and self.met_at(target) is None
            and getattr(self, f"{target}_breached_at") is None
        )

    def next_check(self) -> datetime | None:
        """The earliest warning or breach still to fire on a running clock."""
        moments = []
        for target in TARGETS:
            if not self.running(target):
                continue
            if (
                getattr(self, f"{target}_warned_at") is None
                and getattr(self, f"{target}_warn_at") is not None
            ):
                moments.append(getattr(self, f"{target}_warn_at"))
            if getattr(self, f"{target}_due_at") is not None:
                moments.append(getattr(self, f"{target}_due_at"))
        return min(moments, default=None)


@event.listens_for(HubSession, "before_flush")
def _keep_next_check(session: Session, _context: Any, _instances: Any) -> None:
    """Whatever changed a ticket, its next SLA check follows."""
    for obj in (*session.new, *session.dirty):
        if isinstance(obj, Ticket):
            obj.sla_check_at = obj.next_check()


class TicketComment(Base, TenantMixin):
    """A comment for the team, or a public reply that goes to the customer."""

    __tablename__ = "ticket_comments"
    __table_args__ = (Index("ix_ticket_comments_ticket", "ticket_id", "id"),)

    ticket_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    author_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    text: Mapped[str | None] = mapped_column(Text)
    public: Mapped[bool] = mapped_column(default=False)
    mentions: Mapped[list[str]] = mapped_column(JSON, default=list)  # user ids


class TicketAttachment(Base, TenantMixin):
    __tablename__ = "ticket_attachments"

    comment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ticket_comments.id", ondelete="CASCADE"), index=True
    )
    media_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(default=0)


class TicketChange(Base, TenantMixin):
    """One line of a ticket's timeline: who changed what, and when (`created_at`)."""

    __tablename__ = "ticket_changes"
    __table_args__ = (Index("ix_ticket_changes_ticket", "ticket_id", "id"),)

    ticket_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(24))  # created, status, priority, assignee, comment, sla_...
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class SlaPolicy(Base, TenantMixin):
    """The targets for tickets of one priority, in minutes of business time."""

    __tablename__ = "sla_policies"
    __table_args__ = (UniqueConstraint("organization_id", "priority"),)

    priority: Mapped[str] = mapped_column(String(8))
    first_response_minutes: Mapped[int]
    resolution_minutes: Mapped[int]
    business_hours_only: Mapped[bool] = mapped_column(default=True)


class TicketSettings(Base, TenantMixin):
    """An organization's business hours and holidays, and its rules for suggesting tickets."""

    __tablename__ = "ticket_settings"
    __table_args__ = (UniqueConstraint("organization_id"),)

    time_zone: Mapped[str | None] = mapped_column(String(64))  # none: the organization's
    # {"sun": [["09:00", "17:00"]], ...}; empty means round the clock.
    business_hours: Mapped[dict[str, list[list[str]]]] = mapped_column(JSON, default=dict)
    holidays: Mapped[list[str]] = mapped_column(JSON, default=list)  # ISO dates
    # [{"keywords": [...], "kind": "support", "priority": "high"}]: a match suggests a ticket.
    suggestion_rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    create_automatically: Mapped[bool] = mapped_column(default=False)
