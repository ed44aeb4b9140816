"""Stripe's webhooks: believed only when signed with the endpoint's secret and fresh (five
minutes), applied once per event id, and applied from Stripe's object as it is now, so events
that come late, twice or out of order never roll the state back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import stripe
import structlog
from sqlalchemy import select

from hub.billing.events import AdminsToldOfBilling
from hub.billing.models import BillingEvent, Subscription
from hub.billing.services.payment_methods import follow_card
from hub.billing.services.subscriptions import fetch_subscription, keep_state
from hub.db import insert_for, new_id, utcnow
from hub.errors import InvalidInput
from hub.events import publish
from hub.i18n import N_
from hub.runtime import Runtime

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "Stripe-Signature"
TOLERANCE_SECONDS = 300
# Events that carry a subscription, and where its id is in their object.
SUBSCRIPTION_EVENTS = {
    "customer.subscription.created": "id",
    "customer.subscription.updated": "id",
    "customer.subscription.deleted": "id",
    "customer.subscription.trial_will_end": "id",
    "invoice.paid": "subscription",
    "invoice.payment_failed": "subscription",
    "invoice.payment_action_required": "subscription",
    "invoice.upcoming": "subscription",
    "checkout.session.completed": "subscription",
}


# Events after which the card invoices are charged to may be another (changed on Stripe's pages).
CARD_EVENTS = ("payment_method.attached", "checkout.session.completed", "customer.updated")


def verified_event(secret: str | None, body: bytes, signature: str | None) -> Any:
    if not secret:
        raise InvalidInput(N_("Stripe webhooks are not configured here."), field=SIGNATURE_HEADER)
    try:
        return stripe.Webhook.construct_event(body, signature or "", secret, tolerance=TOLERANCE_SECONDS)
    except (stripe.SignatureVerificationError, ValueError):
        raise InvalidInput(
            N_("The Stripe signature is missing, wrong or too old."), field=SIGNATURE_HEADER
        ) from None


async def receive(runtime: Runtime, body: bytes, signature: str | None) -> bool:
    """Apply a signed event; False when it was applied before."""
    event = verified_event(runtime.settings.stripe_webhook_secret, body, signature)
    event_id, kind = event["id"], event["type"]
    async with runtime.db.system_session() as session:
        if await session.scalar(select(BillingEvent.id).where(BillingEvent.stripe_event_id == event_id)):
            return False
    if kind in SUBSCRIPTION_EVENTS:
        found = event["data"]["object"].to_dict()
        subscription_id = found.get(SUBSCRIPTION_EVENTS[kind])
        if subscription_id:
            await _follow(
                runtime,
                subscription_id,
                found if kind.startswith("customer.subscription") else None,
                _notice_of(kind, found),
            )
    elif kind not in CARD_EVENTS:
        log.info("stripe event acknowledged, nothing to do", event_type=kind)
    if kind in CARD_EVENTS:
        found = event["data"]["object"].to_dict()
        await _follow_card(runtime, found.get("customer"), found.get("subscription"))
    # Noted once applied: if the process dies first, Stripe sends it again and it applies again
    # (applying Stripe's state as it is now is the same the second time).
    async with runtime.db.system_session() as session:
        now = utcnow()
        await session.execute(
            insert_for(session, BillingEvent.__table__)
            .values(id=new_id(), stripe_event_id=event_id, event_type=kind, created_at=now, updated_at=now)
            .on_conflict_do_nothing(index_elements=["stripe_event_id"])
        )
        await session.commit()
    return True


def _notice_of(kind: str, found: dict[str, Any]) -> dict[str, Any] | None:
    """What the admins are e-mailed about this event, if anything."""
    if kind == "customer.subscription.trial_will_end" and found.get("trial_end"):
        return {"notice": "trial_ending", "when": _day(found["trial_end"])}
    if kind == "invoice.payment_failed":
        return {
            "notice": "payment_failed",
            "amount": int(found.get("amount_due") or 0),
            "currency": found.get("currency") or "usd",
            "when": _day(found["next_payment_attempt"]) if found.get("next_payment_attempt") else None,
        }
    if kind == "invoice.payment_action_required":
        link = found.get("hosted_invoice_url")
        return {
            "notice": "payment_action_required",
            "amount": int(found.get("amount_due") or 0),
            "currency": found.get("currency") or "usd",
            "link": link if isinstance(link, str) and link.startswith("https://") else None,
        }
    return None


def _day(timestamp: Any) -> str:
    return datetime.fromtimestamp(int(timestamp), UTC).date().isoformat()


async def _follow(
    runtime: Runtime, subscription_id: str, sent: dict[str, Any] | None, notice: dict[str, Any] | None
) -> None:
    """Keep the subscription as Stripe has it now (or as the event had it, if Stripe has it no
    more: a deleted subscription), and tell the admins what the event says they must know."""
    seen_at = utcnow()
    fresh = await fetch_subscription(runtime, subscription_id)
    state = fresh if fresh is not None else sent
    if state is None:
        return
    data = state.to_dict() if hasattr(state, "to_dict") else state
    organization_id = await _organization_of(runtime, data)
    if organization_id is None:
        log.warning("stripe subscription of no organization here", subscription=subscription_id)
        return
    async with runtime.db.session(organization_id) as session:
        row = await session.scalar(select(Subscription))
        if row is None:  # started outside the hub (Checkout): the customer is the organization's
            row = Subscription(stripe_customer_id=data["customer"], status="none")
            session.add(row)
        if await keep_state(session, row, data, seen_at=seen_at):
            log.info("subscription updated from stripe", status=row.status, plan=row.plan_code)
        if notice is not None:
            await publish(session, AdminsToldOfBilling(organization_id=organization_id, **notice))
        await session.commit()


async def _follow_card(runtime: Runtime, customer_id: Any, subscription_id: Any) -> None:
    if not isinstance(customer_id, str):
        return
    organization_id = await _organization_of(runtime, {"customer": customer_id})
    if organization_id is None:
        return
    async with runtime.db.session(organization_id) as session:
        await follow_card(runtime, session, subscription_id if isinstance(subscription_id, str) else None)
        await session.commit()


async def _organization_of(runtime: Runtime, data: dict[str, Any]) -> uuid.UUID | None:
    async with runtime.db.system_session() as session:
        found = await session.scalar(
            select(Subscription.organization_id).where(
                Subscription.stripe_customer_id == data.get("customer")
            )
        )
    if found is not None:
        return found
    named = (data.get("metadata") or {}).get("hub_organization")
    try:
        return uuid.UUID(named) if named else None
    except ValueError:
        return None
