"""The card invoices are charged to: a SetupIntent the browser confirms with Stripe (the card's
number never reaches the hub), then the card it saved made the customer's default."""

from __future__ import annotations

from typing import Any

import stripe

from hub.billing import gateway
from hub.billing.models import Subscription
from hub.billing.services.subscriptions import billing_account, subscription_of
from hub.db import HubAsyncSession
from hub.errors import Conflict, InvalidInput, NotFound
from hub.i18n import N_
from hub.runtime import Runtime


async def start_card_setup(runtime: Runtime, session: HubAsyncSession, billing_email: str | None) -> Any:
    """A SetupIntent for the organization's customer, for Stripe.js to confirm in the browser."""
    account = await billing_account(runtime, session, billing_email)
    client = gateway.client(runtime.settings)
    intent = await client.v1.setup_intents.create_async(
        {"customer": account.stripe_customer_id, "usage": "off_session"},
        {"idempotency_key": f"hub-setup-{session.organization_id}-{gateway.new_key()}"},
    )
    await session.commit()
    return intent


async def use_confirmed_card(
    runtime: Runtime, session: HubAsyncSession, setup_intent_id: str
) -> Subscription:
    """The card a confirmed SetupIntent saved becomes the default for the organization's
    invoices. Only the organization's own SetupIntents are taken (another's is 404)."""
    account = await subscription_of(session)
    if account is None:
        raise NotFound()
    client = gateway.client(runtime.settings)
    try:
        intent = (await client.v1.setup_intents.retrieve_async(setup_intent_id)).to_dict()
    except stripe.InvalidRequestError as error:
        if error.http_status == 404:
            raise NotFound() from None
        raise
    if intent.get("customer") != account.stripe_customer_id:
        raise NotFound()
    if intent.get("status") != "succeeded" or not intent.get("payment_method"):
        raise Conflict(N_("The card has not been confirmed yet."), field="setup_intent")
    method_id = intent["payment_method"]
    method = (await client.v1.payment_methods.retrieve_async(method_id)).to_dict()
    if method.get("customer") != account.stripe_customer_id:
        if method.get("customer"):
            raise NotFound()
        await client.v1.payment_methods.attach_async(method_id, {"customer": account.stripe_customer_id})
    await client.v1.customers.update_async(
        account.stripe_customer_id, {"invoice_settings": {"default_payment_method": method_id}}
    )
    keep_card(account, method)
    await session.commit()
    return account


def keep_card(account: Subscription, method: dict[str, Any]) -> None:
    """What may be shown of the card: brand, last four digits, expiry."""
    card = method.get("card") or {}
    account.card_brand = card.get("brand")
    account.card_last4 = card.get("last4")
    if card.get("exp_year") and card.get("exp_month"):
        account.card_expires = f"{int(card['exp_year']):04d}-{int(card['exp_month']):02d}"


async def follow_card(runtime: Runtime, session: HubAsyncSession, subscription_id: str | None = None) -> None:
    """The card invoices are charged to, as Stripe has it now, after it changed outside the hub
    (the Billing Portal, Checkout): the customer's default, else the subscription's own."""
    account = await subscription_of(session)
    if account is None:
        return
    client = gateway.client(runtime.settings)
    customer = (await client.v1.customers.retrieve_async(account.stripe_customer_id)).to_dict()
    method_id = (customer.get("invoice_settings") or {}).get("default_payment_method")
    if not method_id and subscription_id:
        found = (await client.v1.subscriptions.retrieve_async(subscription_id)).to_dict()
        method_id = found.get("default_payment_method")
    if isinstance(method_id, dict):  # expanded
        method_id = method_id.get("id")
    if not method_id:
        return
    method = (await client.v1.payment_methods.retrieve_async(method_id)).to_dict()
    if method.get("customer") == account.stripe_customer_id:
        keep_card(account, method)


def check_setup_intent_id(value: str) -> str:
    if not value.startswith("seti_") or len(value) > 200 or not value.replace("_", "").isalnum():
        raise InvalidInput(N_("This is not a valid identifier."), field="setup_intent")
    return value
