"""An organization's subscription: started from a plan (with the plan's trial the first time),
and kept as Stripe last said. Stripe is the truth: what the hub keeps is read back from Stripe's
object, and an object read earlier never overwrites one read later."""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, cast

import stripe
import structlog
from sqlalchemy import select

from hub.billing import gateway
from hub.billing.events import AdminsToldOfBilling
from hub.billing.models import BillingPlan, Subscription
from hub.billing.schemas import TaxId
from hub.billing.services.plans import INTERVALS
from hub.db import HubAsyncSession, utcnow
from hub.errors import Conflict, InvalidInput
from hub.events import publish
from hub.i18n import N_
from hub.models import Organization
from hub.runtime import Runtime
from hub.tasks import schedule

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
    runtime: Runtime,
    session: HubAsyncSession,
    *,
    plan_code: str,
    interval: str,
    billing_email: str,
    tax_id: TaxId | None = None,
) -> Subscription:
    """Start the organization's subscription: its Stripe customer is made once (with the
    organization's name and billing e-mail), and the plan's trial is given the first time."""
    plan = await plan_named(session, plan_code)
    price = price_of(plan, interval)
    current = await subscription_of(session)
    if current is not None and current.status in LIVE:
        raise Conflict(N_("This organization already has a subscription: change its plan instead."))
    current = await billing_account(runtime, session, billing_email, tax_id)
    organization_id = session.organization_id
    client = gateway.client(runtime.settings)
    params: dict[str, Any] = {
        "customer": current.stripe_customer_id,
        "items": [{"plan": price}],
        "metadata": {"hub_organization": str(organization_id), "hub_plan": plan.code},
    }
    if plan.trial_days and current.trial_end is None:  # one trial per organization
        params["trial_period_days"] = plan.trial_days
    # One key per request: the library's retries of it are one subscription, a later request
    # (after a cancellation, say) is another.
    created = await client.v1.subscriptions.create_async(
        cast(Any, params), {"idempotency_key": f"hub-subscribe-{organization_id}-{uuid.uuid4()}"}
    )
    apply_subscription(current, created, seen_at=utcnow())
    await session.commit()
    log.info("subscribed", plan=plan.code, interval=interval, status=current.status)
    return current


async def billing_account(
    runtime: Runtime,
    session: HubAsyncSession,
    billing_email: str | None,
    tax_id: TaxId | None = None,
) -> Subscription:
    """The organization's row and its Stripe customer, made once (with the organization's name,
    billing e-mail and tax id; the same idempotency key for every try); later calls change the
    e-mail or tax id Stripe prints on the invoices."""
    current = await subscription_of(session)
    client = gateway.client(runtime.settings)
    if current is None:
        if not billing_email:
            raise InvalidInput(N_("A billing e-mail is needed."), field="billing_email")
        organization = await session.get_one(Organization, session.organization_id)
        params: dict[str, Any] = {
            "email": billing_email,
            "name": organization.name,
            "metadata": {"hub_organization": str(organization.id)},
        }
        if tax_id is not None:
            params["tax_id_data"] = [{"type": tax_id.type, "value": tax_id.value}]
        async with _tax_id_checked():
            customer = await client.v1.customers.create_async(
                cast(Any, params),
                {"idempotency_key": f"hub-customer-{organization.id}-{_tax_key(tax_id)}"},
            )
        current = Subscription(stripe_customer_id=customer.id, status="none", billing_email=billing_email)
        if tax_id is not None:
            current.tax_id_type, current.tax_id_value = tax_id.type, tax_id.value
        session.add(current)
        await session.flush()
        return current
    if billing_email and current.billing_email != billing_email:
        await client.v1.customers.update_async(current.stripe_customer_id, {"email": billing_email})
        current.billing_email = billing_email
    if tax_id is not None and (current.tax_id_type, current.tax_id_value) != (tax_id.type, tax_id.value):
        async with _tax_id_checked():
            await client.v1.customers.tax_ids.create_async(
                current.stripe_customer_id,
                cast(Any, {"type": tax_id.type, "value": tax_id.value}),
                {"idempotency_key": f"hub-tax-id-{session.organization_id}-{_tax_key(tax_id)}"},
            )
        current.tax_id_type, current.tax_id_value = tax_id.type, tax_id.value
    return current


def _tax_key(tax_id: TaxId | None) -> str:
    if tax_id is None:
        return "none"
    return hashlib.sha256(f"{tax_id.type}:{tax_id.value}".encode()).hexdigest()[:16]


@contextlib.asynccontextmanager
async def _tax_id_checked() -> AsyncIterator[None]:
    """Stripe judges a tax id by its country's rules: one it refuses is the admin's to fix."""
    try:
        yield
    except stripe.InvalidRequestError as error:
        if "tax" in (error.param or "") or "tax" in str(error.user_message or error).lower():
            raise InvalidInput(N_("This tax id is not valid for its type."), field="tax_id") from None
        raise


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
    if row.status != "past_due":
        row.past_due_since = None
    elif row.past_due_since is None:
        row.past_due_since = seen_at
    # The price billed says the plan (each price is made for one plan); the subscription's own
    # note of it is the fallback.
    row.plan_code = (price.get("metadata") or {}).get("hub_plan") or (data.get("metadata") or {}).get(
        "hub_plan"
    )
    row.interval = price.get("interval")
    row.current_period_end = _moment(data.get("current_period_end"))
    row.trial_end = _moment(data.get("trial_end")) or row.trial_end
    row.cancel_at_period_end = bool(data.get("cancel_at_period_end"))
    row.stripe_seen_at = seen_at
    return True


async def keep_state(session: HubAsyncSession, row: Subscription, found: Any, *, seen_at: datetime) -> bool:
    """`apply_subscription`, and the admins told (by e-mail, after the commit) when the plan
    changed, whoever changed it: the hub, the Billing Portal or Stripe's dashboard."""
    before = row.plan_code
    applied = apply_subscription(row, found, seen_at=seen_at)
    if applied and before and row.plan_code and before != row.plan_code:
        await publish(
            session,
            AdminsToldOfBilling(
                organization_id=row.organization_id, notice="plan_changed", plan=row.plan_code
            ),
        )
    return applied


async def fetch_subscription(runtime: Runtime, subscription_id: str) -> Any | None:
    """Stripe's subscription as it is now (None: Stripe no longer has it)."""
    client = gateway.client(runtime.settings)
    try:
        return await client.v1.subscriptions.retrieve_async(subscription_id)
    except stripe.InvalidRequestError as error:
        if error.http_status == 404:
            return None
        raise


def _live(current: Subscription | None) -> Subscription:
    if current is None or current.status not in LIVE or not current.stripe_subscription_id:
        raise Conflict(N_("This organization has no subscription."))
    return current


async def cancel(runtime: Runtime, session: HubAsyncSession, *, at_period_end: bool) -> Subscription:
    """End the subscription at the end of the period paid for (it can be taken back until then
    by changing plan), or now."""
    current = _live(await subscription_of(session))
    client = gateway.client(runtime.settings)
    subscription_id = current.stripe_subscription_id
    assert subscription_id is not None
    if at_period_end:
        changed = await client.v1.subscriptions.update_async(subscription_id, {"cancel_at_period_end": True})
    else:
        changed = await client.v1.subscriptions.cancel_async(subscription_id)
    current.pending_plan_code = current.pending_interval = None
    await keep_state(session, current, changed, seen_at=utcnow())
    await session.commit()
    log.info("subscription cancelled", at_period_end=at_period_end)
    return current


def monthly_cost(plan: BillingPlan, interval: str) -> float:
    return plan.monthly_amount if interval == "month" else plan.yearly_amount / 12


async def change_plan(
    runtime: Runtime, session: HubAsyncSession, *, plan_code: str, interval: str
) -> Subscription:
    """An upgrade applies at once (Stripe prorates what is left of the period); a downgrade at
    the end of the period paid for. Refused (409) while the organization uses more of a limit
    than the new plan allows, naming each."""
    from hub.billing.services.limits import over_limits  # limits reads subscriptions

    current = _live(await subscription_of(session))
    plan = await plan_named(session, plan_code)
    price = price_of(plan, interval)
    if current.plan_code == plan.code and current.interval == interval and not current.cancel_at_period_end:
        raise Conflict(N_("The organization is on this plan already."), field="plan")
    await over_limits(session, plan)
    before = await session.scalar(select(BillingPlan).where(BillingPlan.code == current.plan_code))
    client = gateway.client(runtime.settings)
    subscription_id = current.stripe_subscription_id
    assert subscription_id is not None
    upgrade = before is None or monthly_cost(plan, interval) >= monthly_cost(
        before, current.interval or "month"
    )
    if upgrade:
        await _move(session, client, current, plan, price)
    else:
        current.pending_plan_code, current.pending_interval = plan.code, interval
        if current.cancel_at_period_end:
            changed = await client.v1.subscriptions.update_async(
                subscription_id, {"cancel_at_period_end": False}
            )
            apply_subscription(current, changed, seen_at=utcnow())
        await schedule(
            session,
            "billing.apply_plan_change",
            current.current_period_end or utcnow(),
            key=f"billing.plan_change:{session.organization_id}",
            organization_id=str(session.organization_id),
        )
    await session.commit()
    log.info("plan changed", plan=plan.code, interval=interval, at_once=upgrade)
    return current


async def _move(
    session: HubAsyncSession,
    client: stripe.StripeClient,
    current: Subscription,
    plan: BillingPlan,
    price: str,
) -> None:
    """Stripe's subscription onto this plan's price now (a cancellation at the period's end is
    taken back), and the hub's row as Stripe answers."""
    subscription_id = current.stripe_subscription_id
    assert subscription_id is not None
    found = await client.v1.subscriptions.retrieve_async(subscription_id)
    item = found.to_dict()["items"]["data"][0]["id"]
    changed = await client.v1.subscriptions.update_async(
        subscription_id,
        {
            "items": [{"id": item, "plan": price}],
            "cancel_at_period_end": False,
            "metadata": {"hub_organization": str(current.organization_id), "hub_plan": plan.code},
        },
    )
    current.pending_plan_code = current.pending_interval = None
    await keep_state(session, current, changed, seen_at=utcnow())


async def apply_pending_change(runtime: Runtime, organization_id: uuid.UUID) -> None:
    """The period a downgrade waited for has ended: the subscription moves to its plan (Stripe
    bills the new plan from now on)."""
    async with runtime.db.session(organization_id) as session:
        current = await subscription_of(session)
        if current is None or not current.pending_plan_code or not current.stripe_subscription_id:
            return
        if current.current_period_end is not None and current.current_period_end > utcnow():
            return  # moved meanwhile; its own job will come
        plan = await session.scalar(select(BillingPlan).where(BillingPlan.code == current.pending_plan_code))
        if plan is None or current.status not in LIVE:
            current.pending_plan_code = current.pending_interval = None
            await session.commit()
            return
        price = price_of(plan, current.pending_interval or "month")
        await _move(session, gateway.client(runtime.settings), current, plan, price)
        await session.commit()
