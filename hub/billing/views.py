"""Billing's answers, in the reader's language."""

from __future__ import annotations

from hub.billing.models import BillingPlan
from hub.billing.schemas import LimitOut, PlanOut, PriceOut
from hub.billing.services import LIMITS, limit_of
from hub.i18n import N_, format_money, translate

LIMIT_NAMES = {
    "agents": N_("Agents"),
    "whatsapp_profiles": N_("WhatsApp numbers"),
    "api_channels": N_("API channels"),
    "messages_per_month": N_("Messages sent a month"),
    "campaign_recipients_per_month": N_("Campaign recipients a month"),
    "ai_credits_per_month": N_("AI credits a month"),
    "storage_mb": N_("Storage (MB)"),
}


def plan_out(plan: BillingPlan, language: str) -> PlanOut:
    names = plan.names or {}
    return PlanOut(
        code=plan.code,
        name=names.get(language) or names.get("en") or plan.code,
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
            LimitOut(limit=limit, name=translate(language, LIMIT_NAMES[limit]), value=limit_of(plan, limit))
            for limit in LIMITS
        ],
    )
