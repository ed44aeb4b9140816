"""Billing's rules, one module per noun: `plans` (the plans file, Stripe's products and prices,
what is offered), `subscriptions` (starting one, keeping Stripe's state), `webhooks` (Stripe's
signed events, once each), `usage` (what an organization uses of each limit)."""

from hub.billing.services.plans import (
    INTERVALS,
    LIMITS,
    PLAN_MODULES,
    SHIPPED_PLANS,
    PlansFileError,
    PlanSpec,
    limit_of,
    offered_plans,
    read_plans,
    sync_plans,
)
from hub.billing.services.subscriptions import (
    apply_subscription,
    fetch_subscription,
    plan_named,
    subscribe,
    subscription_of,
)
from hub.billing.services.usage import usage_now
from hub.billing.services.webhooks import SIGNATURE_HEADER, receive

__all__ = [
    "INTERVALS",
    "LIMITS",
    "PLAN_MODULES",
    "SHIPPED_PLANS",
    "SIGNATURE_HEADER",
    "PlanSpec",
    "PlansFileError",
    "apply_subscription",
    "fetch_subscription",
    "limit_of",
    "offered_plans",
    "plan_named",
    "read_plans",
    "receive",
    "subscribe",
    "subscription_of",
    "sync_plans",
    "usage_now",
]
