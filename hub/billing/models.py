"""Billing's tables: the installation's plans (readable by every organization, written by
`hub billing sync-plans`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base


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
