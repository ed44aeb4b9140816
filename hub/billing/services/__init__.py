"""Billing's rules, one module per noun: `plans` (the plans file, Stripe's products and prices,
what is offered)."""

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

__all__ = [
    "INTERVALS",
    "LIMITS",
    "PLAN_MODULES",
    "SHIPPED_PLANS",
    "PlanSpec",
    "PlansFileError",
    "limit_of",
    "offered_plans",
    "read_plans",
    "sync_plans",
]
