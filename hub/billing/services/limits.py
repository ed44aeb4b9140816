"""The plan in force and its limits, enforced where the work happens: going past one is 402,
naming the limit, its value and the plan that lifts it. With billing off there are none.
Inbound messages are never counted against anything here."""

from __future__ import annotations

import math
from datetime import timedelta

from sqlalchemy import select

from hub.billing.models import BillingPlan, Subscription
from hub.billing.services.plans import limit_of
from hub.billing.services.subscriptions import subscription_of
from hub.billing.services.usage import (
    MB,
    MONTHLY_COUNTERS,
    stored_bytes,
    tell_if_crossed,
    usage_now,
    used_of,
)
from hub.config import LANGUAGES
from hub.db import HubAsyncSession, utcnow
from hub.errors import Conflict, PaymentRequired
from hub.i18n import N_, Names, Term, translate
from hub.runtime import current

# A subscription in these states gives its plan (past_due: during the grace Stripe's retries
# give; then Stripe moves it to unpaid or canceled).
IN_FORCE = ("trialing", "active", "past_due")
LIMIT_TERMS = {
    "agents": Term(N_("Agents")),
    "whatsapp_profiles": Term(N_("WhatsApp numbers")),
    "api_channels": Term(N_("API channels")),
    "messages_per_month": Term(N_("Messages sent a month")),
    "campaign_recipients_per_month": Term(N_("Campaign recipients a month")),
    "ai_credits_per_month": Term(N_("AI credits a month")),
    "storage_mb": Term(N_("Storage (MB)")),
}


def billing_on() -> bool:
    return bool(current().settings.stripe_secret_key)


# A subscription left unpaid: the organization is restricted (it reads and receives, and counts
# nothing more: no sending, no campaigns, no invitations) until it pays.
UNPAID = ("unpaid", "incomplete_expired")


async def plan_in_force(session: HubAsyncSession) -> BillingPlan | None:
    """The plan whose limits apply: the subscription's while it is in force (a payment due for
    longer than the grace period restricts), else the free plan of the plans file (a plan that
    costs nothing), else none (nothing beyond reading)."""
    subscription = await subscription_of(session)
    return await _plan_of(session, subscription)


async def _plan_of(session: HubAsyncSession, subscription: Subscription | None) -> BillingPlan | None:
    if subscription is not None and restricted(subscription):
        return None
    if subscription is not None and subscription.status in IN_FORCE and subscription.plan_code:
        plan = await session.scalar(select(BillingPlan).where(BillingPlan.code == subscription.plan_code))
        if plan is not None:
            return plan
    return await session.scalar(
        select(BillingPlan)
        .where(BillingPlan.active.is_(True), BillingPlan.monthly_amount == 0, BillingPlan.yearly_amount == 0)
        .order_by(BillingPlan.position)
        .limit(1)
    )


def restricted(subscription: Subscription) -> bool:
    if subscription.status in UNPAID:
        return True
    grace = timedelta(days=current().settings.billing_grace_days)
    since = subscription.past_due_since
    return subscription.status == "past_due" and since is not None and utcnow() - since > grace


async def _plan_if_not_restricted(session: HubAsyncSession) -> BillingPlan | None:
    """The plan in force; 402 while the organization is restricted (one read of the subscription)."""
    subscription = await subscription_of(session)
    if subscription is not None and restricted(subscription):
        raise PaymentRequired(
            N_(
                "A payment is due. Until it is paid, the organization reads and receives messages "
                "but cannot send, start campaigns or invite."
            ),
            extra={"restricted": True, "status": subscription.status},
        )
    return await _plan_of(session, subscription)


async def require_room(session: HubAsyncSession, limit: str, adding: int = 1) -> None:
    """402 unless the plan in force leaves room for `adding` more of this limit. What is held
    (seats, numbers, channels) crossing 80% or 100% is told to the admins once the caller
    commits; the monthly counters tell it themselves when they count."""
    if not billing_on():
        return
    plan = await _plan_if_not_restricted(session)
    value = limit_of(plan, limit) if plan is not None else 0
    if value is None:
        return
    used = await used_of(session, limit)
    if used is None:
        return  # not counted on this installation
    if used + adding <= value:
        if limit not in MONTHLY_COUNTERS:
            tell_if_crossed(session, limit, value, used, used + adding)
        return
    await _refuse(session, limit, value, used, used + adding)


async def require_storage(session: HubAsyncSession, size: int) -> None:
    """402 unless the plan's storage has room for a file of `size` bytes (a file the team sends;
    what customers send is always kept)."""
    if not billing_on():
        return
    plan = await _plan_if_not_restricted(session)
    value = limit_of(plan, "storage_mb") if plan is not None else 0
    if value is None:
        return
    held = await stored_bytes(session)
    before, after = math.ceil(held / MB), math.ceil((held + size) / MB)
    if held + size <= value * MB:
        tell_if_crossed(session, "storage_mb", value, before, after)
        return
    await _refuse(session, "storage_mb", value, before, after)


async def _refuse(session: HubAsyncSession, limit: str, value: int, used: int, needed: int) -> None:
    lifting = await _plan_lifting(session, limit, needed)
    extra = {"limit": limit, "value": value, "used": used, "plan": lifting.code if lifting else None}
    if lifting is None:
        raise PaymentRequired(
            N_("{limit}: your plan allows {value}, and no plan allows more."),
            extra=extra,
            limit=LIMIT_TERMS[limit],
            value=value,
        )
    raise PaymentRequired(
        N_("{limit}: your plan allows {value}. The {plan} plan allows more."),
        extra=extra,
        limit=LIMIT_TERMS[limit],
        value=value,
        plan=Names(lifting.names or {"en": lifting.code}),
    )


async def _plan_lifting(session: HubAsyncSession, limit: str, needed: int) -> BillingPlan | None:
    for plan in await session.scalars(
        select(BillingPlan).where(BillingPlan.active.is_(True)).order_by(BillingPlan.position)
    ):
        value = limit_of(plan, limit)
        if value is None or value >= needed:
            return plan
    return None


async def require_module(session: HubAsyncSession, module: str, name: Term) -> None:
    """402 unless the plan in force includes this module (work in it; reading is never refused)."""
    if not billing_on():
        return
    plan = await _plan_if_not_restricted(session)
    if plan is not None and module in (plan.modules or []):
        return
    offered = await session.scalars(
        select(BillingPlan).where(BillingPlan.active.is_(True)).order_by(BillingPlan.position)
    )
    including = next((candidate for candidate in offered if module in (candidate.modules or [])), None)
    extra = {"module": module, "plan": including.code if including else None}
    if including is None:
        raise PaymentRequired(N_("No plan includes the {module} module."), extra=extra, module=name)
    raise PaymentRequired(
        N_("The {module} module is not in your plan. The {plan} plan includes it."),
        extra=extra,
        module=name,
        plan=Names(including.names or {"en": including.code}),
    )


async def over_limits(session: HubAsyncSession, plan: BillingPlan) -> None:
    """409 naming each limit the organization uses more of than `plan` allows (a plan it cannot
    move to until it uses less)."""
    used = await usage_now(session)
    over = [
        (limit, used[limit], value)
        for limit in LIMIT_TERMS
        if (value := limit_of(plan, limit)) is not None and (used.get(limit) or 0) > value
    ]
    if not over:
        return
    names = Names(
        {
            language: ("، " if language == "ar" else ", ").join(
                translate(language, LIMIT_TERMS[limit]) for limit, _, _ in over
            )
            for language in LANGUAGES
        }
    )
    raise Conflict(
        N_("The organization uses more than the {plan} plan allows of: {limits}."),
        field="plan",
        extra={"over": [{"limit": limit, "used": count, "value": value} for limit, count, value in over]},
        plan=Names(plan.names or {"en": plan.code}),
        limits=names,
    )
