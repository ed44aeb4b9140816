"""The one place the hub talks to Stripe: a client per installation, pinned to the API version
whose objects this code reads, with an idempotency key on every call that creates something."""

from __future__ import annotations

import functools
import uuid
from typing import Any

import stripe

from hub.config import Settings

# The API version the hub reads objects in; Stripe answers every request in it whatever the
# account's default, so an upgrade of the account cannot change what the hub is sent.
API_VERSION = "2024-06-20"


class BillingOff(RuntimeError):
    """Billing is not configured on this installation (no STRIPE_SECRET_KEY)."""


def client(settings: Settings) -> stripe.StripeClient:
    if not settings.stripe_secret_key:
        raise BillingOff()
    return _client(settings.stripe_secret_key, settings.stripe_api_base)


@functools.cache
def _client(secret_key: str, api_base: str | None) -> stripe.StripeClient:
    return stripe.StripeClient(
        secret_key,
        stripe_version=API_VERSION,
        base_addresses={"api": api_base} if api_base else {},
        http_client=stripe.HTTPXClient(),
        max_network_retries=2,  # safe: every creating call carries its idempotency key
    )


def new_key() -> str:
    """A fresh part of an idempotency key: one per request (the library's retries reuse it)."""
    return uuid.uuid4().hex


def product_id(code: str) -> str:
    return f"hub-plan-{code}"


def price_id(code: str, interval: str, amount: int, currency: str) -> str:
    """A price's id says what it charges: a changed amount is a new price, never an edit."""
    return f"hub-{code}-{interval}-{currency}-{amount}"


async def _retrieve(retrieve: Any, object_id: str) -> Any | None:
    try:
        return await retrieve(object_id)
    except stripe.InvalidRequestError as error:
        if error.http_status == 404:
            return None
        raise


async def ensure_product(client: stripe.StripeClient, product: str, *, name: str, code: str) -> None:
    found = await _retrieve(client.v1.products.retrieve_async, product)
    if found is None:
        await client.v1.products.create_async(
            {"id": product, "name": name, "metadata": {"hub_plan": code}},
            {"idempotency_key": f"hub-product-{product}"},
        )
    elif found.name != name:
        await client.v1.products.update_async(product, {"name": name})


async def ensure_price(
    client: stripe.StripeClient, product: str, *, code: str, interval: str, amount: int, currency: str
) -> str:
    """The active price of a plan for an interval, made if new; the product's other prices for
    that interval are made inactive (sold no more; subscriptions on them keep them)."""
    wanted = price_id(code, interval, amount, currency)
    found = await _retrieve(client.v1.plans.retrieve_async, wanted)
    if found is None:
        await client.v1.plans.create_async(
            {
                "id": wanted,
                "product": product,
                "amount": amount,
                "currency": currency,
                "interval": interval,
                "nickname": f"{code} {interval}",
                "metadata": {"hub_plan": code},
            },
            {"idempotency_key": f"hub-price-{wanted}"},
        )
    elif not found.active:
        await client.v1.plans.update_async(wanted, {"active": True})
    listed = await client.v1.plans.list_async({"product": product, "active": True, "limit": 100})
    for other in listed.data:
        if other.id != wanted and other.interval == interval:
            await client.v1.plans.update_async(other.id, {"active": False})
    return wanted
