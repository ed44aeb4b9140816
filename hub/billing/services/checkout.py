"""Stripe's own pages, as an alternative to the console's forms: Checkout starts a subscription
(the card typed on Stripe's page), the Billing Portal lets an admin change the card, see invoices
and change or cancel the plan. Both end in the webhooks, which keep the same state."""

from __future__ import annotations

from typing import Any, cast

from hub.billing import gateway
from hub.billing.schemas import TaxId
from hub.billing.services.subscriptions import (
    LIVE,
    billing_account,
    plan_named,
    price_of,
    subscription_of,
)
from hub.db import HubAsyncSession
from hub.errors import Conflict
from hub.i18n import N_
from hub.runtime import Runtime

# The console's page Stripe sends the admin back to.
BILLING_PAGE = "/billing"


async def start_checkout(
    runtime: Runtime,
    session: HubAsyncSession,
    *,
    plan_code: str,
    interval: str,
    billing_email: str | None,
    tax_id: TaxId | None,
    base_url: str,
) -> str:
    """A Checkout page for the plan (its trial the first time), for an organization that has no
    subscription yet: the address to send the admin to."""
    plan = await plan_named(session, plan_code)
    price = price_of(plan, interval)
    existing = await subscription_of(session)
    if existing is not None and existing.status in LIVE:
        raise Conflict(N_("This organization already has a subscription: change its plan instead."))
    account = await billing_account(runtime, session, billing_email, tax_id)
    await session.commit()  # the customer is the organization's even if the page is left
    organization_id = str(session.organization_id)
    note = {"hub_organization": organization_id, "hub_plan": plan.code}
    subscription_data: dict[str, Any] = {"metadata": note}
    if plan.trial_days and account.trial_end is None:  # one trial per organization
        subscription_data["trial_period_days"] = plan.trial_days
    page = await gateway.client(runtime.settings).v1.checkout.sessions.create_async(
        cast(
            Any,
            {
                "mode": "subscription",
                "customer": account.stripe_customer_id,
                "client_reference_id": organization_id,
                "line_items": [{"price": price, "quantity": 1}],
                "subscription_data": subscription_data,
                "metadata": note,
                "success_url": f"{base_url}{BILLING_PAGE}?checkout=done",
                "cancel_url": f"{base_url}{BILLING_PAGE}",
            },
        ),
        {"idempotency_key": f"hub-checkout-{organization_id}-{gateway.new_key()}"},
    )
    if not page.url:
        raise Conflict(N_("The payment service gave no page to open."))
    return page.url


async def open_portal(runtime: Runtime, session: HubAsyncSession, *, base_url: str) -> str:
    """A Billing Portal session for the organization's customer: the address to send the admin to."""
    account = await subscription_of(session)
    if account is None:
        raise Conflict(N_("This organization has no billing account yet: choose a plan first."))
    portal = await gateway.client(runtime.settings).v1.billing_portal.sessions.create_async(
        {"customer": account.stripe_customer_id, "return_url": f"{base_url}{BILLING_PAGE}"},
        {"idempotency_key": f"hub-portal-{session.organization_id}-{gateway.new_key()}"},
    )
    return portal.url
