"""Billing's answers, in the reader's language."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hub.billing.models import BillingPlan, Subscription
from hub.billing.schemas import (
    CardOut,
    InvoiceOut,
    LimitOut,
    PlanOut,
    PriceOut,
    SubscriptionOut,
    TaxIdOut,
    UsageOut,
)
from hub.billing.services import LIMITS, limit_of
from hub.billing.services.limits import LIMIT_TERMS, restricted
from hub.billing.services.plans import plan_name
from hub.i18n import format_money, translate


def plan_out(plan: BillingPlan, language: str) -> PlanOut:
    return PlanOut(
        code=plan.code,
        name=plan_name(plan, language),
        prices=[
            PriceOut(
                interval=interval,
                amount=amount,
                currency=plan.currency,
                display=format_money(amount, plan.currency, language),
            )
            for interval, amount in (("month", plan.monthly_amount), ("year", plan.yearly_amount))
        ],
        trial_days=plan.trial_days,
        modules=list(plan.modules or []),
        limits=[
            LimitOut(limit=limit, name=translate(language, LIMIT_TERMS[limit]), value=limit_of(plan, limit))
            for limit in LIMITS
        ],
    )


def subscription_out(
    subscription: Subscription | None,
    plan: BillingPlan | None,
    in_force: BillingPlan | None,
    used: dict[str, int | None],
    language: str,
) -> SubscriptionOut:
    """The subscription as Stripe has it, and usage against the plan in force (the free plan
    without a subscription; none while restricted)."""
    return SubscriptionOut(
        plan=plan.code if plan is not None else None,
        plan_name=plan_name(plan, language) if plan is not None else None,
        interval=subscription.interval if subscription is not None else None,
        status=subscription.status if subscription is not None else "none",
        current_period_end=subscription.current_period_end if subscription is not None else None,
        trial_end=subscription.trial_end if subscription is not None else None,
        cancel_at_period_end=subscription.cancel_at_period_end if subscription is not None else False,
        billing_email=subscription.billing_email if subscription is not None else None,
        tax_id=TaxIdOut(type=subscription.tax_id_type, value=subscription.tax_id_value)
        if subscription is not None and subscription.tax_id_type and subscription.tax_id_value
        else None,
        in_force_plan=in_force.code if in_force is not None else None,
        restricted=subscription is not None and restricted(subscription),
        card=CardOut(
            brand=subscription.card_brand, last4=subscription.card_last4, expires=subscription.card_expires
        )
        if subscription is not None and subscription.card_last4
        else None,
        pending_plan=subscription.pending_plan_code if subscription is not None else None,
        pending_interval=subscription.pending_interval if subscription is not None else None,
        usage=[
            UsageOut(
                limit=limit,
                name=translate(language, LIMIT_TERMS[limit]),
                used=used.get(limit),
                value=limit_of(in_force, limit) if in_force is not None else 0,
            )
            for limit in LIMITS
        ],
    )


def invoice_out(invoice: dict[str, Any], language: str) -> InvoiceOut:
    currency = invoice.get("currency") or "usd"
    return InvoiceOut(
        id=invoice["id"],
        number=invoice.get("number"),
        status=invoice.get("status"),
        amount_due=int(invoice.get("amount_due") or 0),
        amount_paid=int(invoice.get("amount_paid") or 0),
        currency=currency,
        display=format_money(int(invoice.get("amount_due") or 0), currency, language),
        created=datetime.fromtimestamp(int(invoice.get("created") or 0), UTC),
        hosted_invoice_url=invoice.get("hosted_invoice_url"),
        invoice_pdf=invoice.get("invoice_pdf"),
    )
