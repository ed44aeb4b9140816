"""Billing's events, its public contract: what admins are told by e-mail (a domain event, so
the mail is sent after the commit and at least once) and what their sockets hear."""

from __future__ import annotations

from typing import ClassVar

from hub.events import Event, event_type
from hub.realtime import SocketEvent, socket_event

# What admins are e-mailed about.
NOTICES = ("trial_ending", "payment_failed", "payment_action_required", "card_expiring", "plan_changed")


@event_type
class AdminsToldOfBilling(Event, frozen=True, kw_only=True):
    name: ClassVar[str] = "billing.admins_told"
    notice: str  # one of NOTICES
    plan: str | None = None  # the plan's code (plan_changed)
    when: str | None = None  # an ISO date: the trial's end, the next payment try, the card's expiry
    amount: int | None = None  # in the currency's smallest unit (payment_failed)
    currency: str | None = None
    link: str | None = None  # Stripe's page of the invoice to confirm (payment_action_required)


@socket_event
class UsageUpdated(SocketEvent, kw_only=True):
    """A monthly counter crossed 80% or 100% of the plan's limit (to admins)."""

    name: ClassVar[str] = "usageUpdated"
    limit: str  # messages_per_month, campaign_recipients_per_month, ai_credits_per_month
    used: int
    value: int  # the plan's limit
    percent: int  # 80 or 100: the mark crossed
