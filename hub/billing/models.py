"""Billing's tables: the installation's plans (readable by every organization, written by
`hub billing sync-plans`), each organization's subscription, and the Stripe events applied."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, TenantMixin


class BillingPlan(Base):
    """A plan of the plans file, with the Stripe product and prices that sell it."""

    __tablename__ = "billing_plans"

    code: Mapped[str] = mapped_column(String(32), unique=True)
    names: Mapped[dict[str, str]] = mapped_column(JSON)  # by language: {"en": ..., "ar": ...}
    currency: Mapped[str] = mapped_column(String(3))  # lower case, as Stripe writes it
    # In the currency's smallest unit (cents); 0 is free.
    monthly_amount: Mapped[int] = mapped_column(BigInteger)
    yearly_amount: Mapped[int] = mapped_column(BigInteger)
    trial_days: Mapped[int] = mapped_column(default=0)
    modules: Mapped[list[str]] = mapped_column(JSON)
    # By limit; a limit absent (or None) is unlimited.
    limits: Mapped[dict[str, Any]] = mapped_column(JSON)
    position: Mapped[int] = mapped_column(default=0)  # its place in the file: the order shown
    active: Mapped[bool] = mapped_column(default=True)  # still in the file
    stripe_product_id: Mapped[str | None] = mapped_column(String(100))
    stripe_monthly_price_id: Mapped[str | None] = mapped_column(String(100))
    stripe_yearly_price_id: Mapped[str | None] = mapped_column(String(100))


class Subscription(Base, TenantMixin):
    """An organization's subscription, as Stripe last told it (one per organization)."""

    __tablename__ = "billing_subscriptions"
    __table_args__ = (UniqueConstraint("organization_id"),)

    stripe_customer_id: Mapped[str] = mapped_column(String(100))
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    plan_code: Mapped[str | None] = mapped_column(String(32))
    interval: Mapped[str | None] = mapped_column(String(8))  # month, year
    # Stripe's: trialing, active, past_due, unpaid, canceled, incomplete, incomplete_expired.
    status: Mapped[str] = mapped_column(String(24), default="none")
    current_period_end: Mapped[datetime | None]
    trial_end: Mapped[datetime | None]
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False)
    billing_email: Mapped[str | None] = mapped_column(String(254))
    # The organization's tax id, printed on its invoices (Stripe's type: sa_vat, eu_vat, ...).
    tax_id_type: Mapped[str | None] = mapped_column(String(16))
    tax_id_value: Mapped[str | None] = mapped_column(String(64))
    # The card invoices are charged to (what may be shown of it).
    card_brand: Mapped[str | None] = mapped_column(String(20))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    card_expires: Mapped[str | None] = mapped_column(String(7))  # 2029-04
    card_warned_for: Mapped[str | None] = mapped_column(String(7))  # the expiry admins were told of
    # A downgrade waits for the end of the period paid for: the plan and interval it goes to.
    pending_plan_code: Mapped[str | None] = mapped_column(String(32))
    pending_interval: Mapped[str | None] = mapped_column(String(8))
    # Since when a payment has been due (past_due): after the grace period, the organization is
    # restricted until it pays.
    past_due_since: Mapped[datetime | None]
    # When Stripe's object that gave this state was read: an older one never rolls it back.
    stripe_seen_at: Mapped[datetime | None]


class BillingEvent(Base):
    """A Stripe event the hub has applied: each is applied once, however often it is sent."""

    __tablename__ = "billing_events"

    stripe_event_id: Mapped[str] = mapped_column(String(100), unique=True)
    event_type: Mapped[str] = mapped_column(String(100))
