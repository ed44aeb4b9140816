"""Billing's rules, one module per noun: `plans` (the plans file, Stripe's products and prices,
what is offered), `subscriptions` (starting, changing and cancelling one, keeping Stripe's
state), `checkout` (Stripe's Checkout and Billing Portal pages), `invoices` (read from Stripe),
`payment_methods` (the card), `limits` (the plan in force, 402 and 409), `webhooks` (Stripe's
signed events, once each), `usage` (what an organization uses of each limit), `notices` (what
admins are e-mailed)."""

from hub.billing.services.checkout import open_portal, start_checkout
from hub.billing.services.invoices import invoices_page
from hub.billing.services.limits import (
    over_limits,
    plan_in_force,
    require_module,
    require_room,
    require_storage,
)
from hub.billing.services.payment_methods import check_setup_intent_id, start_card_setup, use_confirmed_card
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
    apply_pending_change,
    apply_subscription,
    billing_account,
    cancel,
    change_plan,
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
    "apply_pending_change",
    "apply_subscription",
    "billing_account",
    "cancel",
    "change_plan",
    "check_setup_intent_id",
    "fetch_subscription",
    "invoices_page",
    "limit_of",
    "offered_plans",
    "open_portal",
    "over_limits",
    "plan_in_force",
    "plan_named",
    "read_plans",
    "receive",
    "require_module",
    "require_room",
    "require_storage",
    "start_card_setup",
    "start_checkout",
    "subscribe",
    "subscription_of",
    "sync_plans",
    "usage_now",
    "use_confirmed_card",
]
