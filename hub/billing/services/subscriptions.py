"""An organization's subscription: started from a plan (with the plan's trial the first time),
and kept as Stripe last said. Stripe is the truth: what the hub keeps is read back from Stripe's
object, and an object read earlier never overwrites one read later."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, cast

import stripe
import structlog
from sqlalchemy import select

from hub.billing import gateway
from hub.billing.models import BillingPlan, Subscription
from hub.billing.services.plans import INTERVALS
from hub.db import HubAsyncSession, utcnow
from hub.errors import Conflict, InvalidInput
from hub.i18n import N_
from hub.models import Organization
from hub.runtime import Runtime

log = structlog.get_logger(__name__)

# Statuses in which an organization has a subscription it must change rather than start again.
LIVE = ("trialing", "active", "past_due", "unpaid", "incomplete")


async def subscription_of(session: HubAsyncSession) -> Subscription | None:
    return await session.scalar(select(Subscription))


async def plan_named(session: HubAsyncSession, code: str) -> BillingPlan:
    plan = await session.scalar(
        select(BillingPlan).where(BillingPlan.code == code, BillingPlan.active.is_(True))
    )
    if plan is None:
        raise InvalidInput(N_("There is no plan {plan}."), field="plan", plan=code)
    return plan


def price_of(plan: BillingPlan, interval: str) -> str:
    if interval not in INTERVALS:
        raise InvalidInput(N_("The interval must be month or year."), field="interval")
    price = plan.stripe_monthly_price_id if interval == "month" else plan.stripe_yearly_price_id
    if price is None:
        raise InvalidInput(N_("There is no plan {plan}."), field="plan", plan=plan.code)
    return price


async def subscribe(
    runtime: Runtime, session: HubAsyncSession, *, plan_code: str, interval: str, billing_email: str
) -> Subscription:
    """Start the organization's subscription: its Stripe customer is made once (with the
    organization's name and billing e-mail), and the plan's trial is given the first time."""
    plan = await plan_named(session, plan_code)
    price = price_of(plan, interval)
    current = await subscription_of(session)
    if current is not None and current.status in LIVE:
        raise Conflict(N_("This organization already has a subscription: change its plan instead."))
    organization = await session.get_one(Organization, session.organization_id)
    client = gateway.client(runtime.settings)
    if current is None:
        customer = await client.v1.customers.create_async(
            {
                "email": billing_email,
                "name": organization.name,
                "metadata": {"hub_organization": str(organization.id)},
            },
            {"idempotency_key": f"hub-customer-{organization.id}"},
        )
        current = Subscription(stripe_customer_id=customer.id, status="none")
        session.add(current)
    elif current.billing_email != billing_email:
        await client.v1.customers.update_async(current.stripe_customer_id, {"email": billing_email})
    current.billing_email = billing_email
    params: dict[str, Any] = {
        "customer": current.stripe_customer_id,
        "items": [{"plan": price}],
        "metadata": {"hub_organization": str(organization.id), "hub_plan": plan.code},
    }
    if plan.trial_days and current.trial_end is None:  # one trial per organization
        params["trial_period_days"] = plan.trial_days
    # One key per request: the library's retries of it are one subscription, a later request
    # (after a cancellation, say) is another.
    created = await client.v1.subscriptions.create_async(
        cast(Any, params), {"idempotency_key": f"hub-subscribe-{organization.id}-{uuid.uuid4()}"}
    )
    apply_subscription(current, created, seen_at=utcnow())
    await session.commit()
    log.info("subscribed", plan=plan.code, interval=interval, status=current.status)
    return current


def _moment(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if value else None


def apply_subscription(row: Subscription, found: Any, *, seen_at: datetime) -> bool:
    """Keep what Stripe's subscription object says, unless what is kept was read later."""
    if row.stripe_seen_at is not None and row.stripe_seen_at > seen_at:
        return False
    data: dict[str, Any] = found.to_dict() if hasattr(found, "to_dict") else dict(found)
    items = (data.get("items") or {}).get("data") or []
    price = items[0].get("plan") or {} if items else {}
    row.stripe_subscription_id = data["id"]
    row.status = data["status"]
    row.plan_code = (data.get("metadata") or {}).get("hub_plan") or (price.get("metadata") or {}).get(
        "hub_plan"
    )
    row.interval = price.get("interval")
    row.current_period_end = _moment(data.get("current_period_end"))
    row.trial_end = _moment(data.get("trial_end")) or row.trial_end
    row.cancel_at_period_end = bool(data.get("cancel_at_period_end"))
    row.stripe_seen_at = seen_at
    return True


async def fetch_subscription(runtime: Runtime, subscription_id: str) -> Any | None:
    """Stripe's subscription as it is now (None: Stripe no longer has it)."""
    client = gateway.client(runtime.settings)
    try:
        return await client.v1.subscriptions.retrieve_async(subscription_id)
    except stripe.InvalidRequestError as error:
        if error.http_status == 404:
            return None
        raise
