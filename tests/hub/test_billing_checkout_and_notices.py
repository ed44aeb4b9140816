"""Stripe's own pages and what admins are told: Checkout starts a first subscription (with the
organization's tax id on its customer) and the signed `checkout.session.completed` keeps it; the
Billing Portal opens for the customer; admins are e-mailed, each in their language, when a trial
ends, a payment fails, a card expires and the plan changes; what the organization holds and
stores is counted against the plan, told at 80% and refused past 100%."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from hub.billing.models import BillingPlan, Subscription
from hub.billing.services import SHIPPED_PLANS, read_plans, sync_plans
from hub.billing.services.notices import warn_expiring_cards
from hub.models import User
from tests.conftest import (
    Mailbox,
    Organization,
    RunningHub,
    add_member,
    capture_pushes,
    eventually,
    hub_with_mailbox,
    register,
    with_every_role,
)
from tests.helpers.billing import LocalStripe, billed_hub, local_stripe, signed
from tests.helpers.channels import tiny_png

WEBHOOK = "/api/billing/webhooks/stripe"


@pytest.fixture(params=["sqlite", "postgres"])
async def billed(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[RunningHub, LocalStripe]]:
    async with billed_hub(request, tmp_path, SHIPPED_PLANS) as (hub, server):
        yield hub, server


async def post_event(hub: RunningHub, server: LocalStripe, event: dict[str, Any]) -> Any:
    body, signature = signed(event, server.webhook_secret, at=int(time.time()))
    async with hub.client() as client:
        answer = await client.post(
            WEBHOOK, content=body, headers={"Content-Type": "application/json", "Stripe-Signature": signature}
        )
    assert answer.status_code == 200, answer.text
    return answer


def event(kind: str, found: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"evt_{kind.replace('.', '_')}_{time.time_ns()}",
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "data": {"object": found},
    }


async def test_checkout_starts_a_subscription_the_webhook_keeps_and_the_portal_opens(
    billed: tuple[RunningHub, LocalStripe],
) -> None:
    hub, server = billed
    stripe = server.client()
    organization = await register(hub, name="Nour Perfumes")
    async with hub.client(organization.admin.token, language="en") as client:
        early = await client.post("/api/billing/portal")
        assert early.status_code == 409, early.text
        assert "no billing account" in early.json()["detail"]
        bad_tax = await client.post(
            "/api/billing/checkout",
            json={
                "plan": "starter",
                "billing_email": "pay@nour.example",
                "tax_id": {"type": "VAT", "value": "x"},
            },
        )
        assert bad_tax.status_code == 400
        assert bad_tax.json()["errors"][0]["field"].startswith("tax_id")
        unknown = await client.post(
            "/api/billing/checkout", json={"plan": "gold", "billing_email": "pay@nour.example"}
        )
        assert unknown.status_code == 400
        assert unknown.json()["errors"][0]["field"] == "plan"

        opened = await client.post(
            "/api/billing/checkout",
            json={
                "plan": "starter",
                "interval": "month",
                "billing_email": "pay@nour.example",
                "tax_id": {"type": "eu_vat", "value": "DE123456789"},
            },
        )
        assert opened.status_code == 201, opened.text
        page_id = opened.json()["url"].rsplit("/", 1)[1]

    # What Stripe was asked for: the plan's price, its trial, the way back to the billing page,
    # for the organization's customer, which carries the tax id.
    page = (await stripe.v1.checkout.sessions.retrieve_async(page_id)).to_dict()
    async with hub.runtime.db.system_session() as session:
        starter = await session.scalar(select(BillingPlan).where(BillingPlan.code == "starter"))
        assert starter is not None
    assert page["mode"] == "subscription"
    assert page["line_items"][0]["price"] == starter.stripe_monthly_price_id
    assert int(page["subscription_data"]["trial_period_days"]) == 14
    assert page["success_url"] == f"{hub.url}/billing?checkout=done"
    assert page["client_reference_id"] == str(organization.id)
    tax_ids = (await stripe.v1.customers.tax_ids.list_async(page["customer"])).data
    assert [(t.type, t.value) for t in tax_ids] == [("eu_vat", "DE123456789")]

    # The admin pays on Stripe's page: Stripe makes the subscription and says so, signed.
    made = await stripe.v1.subscriptions.create_async(
        {
            "customer": page["customer"],
            "items": [{"plan": starter.stripe_monthly_price_id}],
            "trial_period_days": 14,
            "metadata": page["subscription_data"]["metadata"],
        }
    )
    completed = event(
        "checkout.session.completed",
        {"id": page_id, "object": "checkout.session", "customer": page["customer"], "subscription": made.id},
    )
    await post_event(hub, server, completed)
    async with hub.client(organization.admin.token, language="en") as client:
        state = (await client.get("/api/billing/subscription")).json()
        assert (state["plan"], state["status"], state["interval"]) == ("starter", "trialing", "month")
        assert state["tax_id"] == {"type": "eu_vat", "value": "DE123456789"}
        assert state["in_force_plan"] == "starter"

        again = await client.post(
            "/api/billing/checkout", json={"plan": "pro", "billing_email": "pay@nour.example"}
        )
        assert again.status_code == 409

        portal = await client.post("/api/billing/portal")
        assert portal.status_code == 201, portal.text
        portal_id = portal.json()["url"].rsplit("/", 1)[1]
        async with httpx.AsyncClient() as inspect:
            asked = (await inspect.get(f"{server.url}/_config/billing_portal/sessions/{portal_id}")).json()
        assert (asked["customer"], asked["return_url"]) == (page["customer"], f"{hub.url}/billing")

        # On the Portal the admin adds a card and makes it the default: Stripe says so, signed.
        card = await stripe.v1.payment_methods.create_async(
            {
                "type": "card",
                "card": {"number": "4242424242424242", "exp_month": 9, "exp_year": 2031, "cvc": "123"},
            }
        )
        await stripe.v1.payment_methods.attach_async(card.id, {"customer": page["customer"]})
        await stripe.v1.customers.update_async(
            page["customer"], {"invoice_settings": {"default_payment_method": card.id}}
        )
        attached = event(
            "payment_method.attached",
            {"id": card.id, "object": "payment_method", "customer": page["customer"]},
        )
        await post_event(hub, server, attached)
        shown = (await client.get("/api/billing/subscription")).json()["card"]
        assert shown == {"brand": "visa", "last4": "4242", "expires": "2031-09"}

        # The tax id changes on the same customer.
        changed = await client.post(
            "/api/billing/account", json={"tax_id": {"type": "eu_vat", "value": "DE987654321"}}
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["tax_id"]["value"] == "DE987654321"

    # A manager reads the billing state but opens nothing.
    manager = await add_member(hub, organization, "manager")
    async with hub.client(manager.token) as client:
        assert (await client.get("/api/billing/subscription")).status_code == 200
        assert (await client.post("/api/billing/portal")).status_code == 403


@pytest.fixture
async def mailed(tmp_path: Path) -> AsyncIterator[tuple[RunningHub, Mailbox, LocalStripe]]:
    async with (
        local_stripe() as server,
        hub_with_mailbox(tmp_path, **server.settings()) as (hub, mailbox),
    ):
        await sync_plans(hub.runtime, read_plans(SHIPPED_PLANS))
        yield hub, mailbox, server


def mail_to(mailbox: Mailbox, address: str) -> list[tuple[str, str]]:
    return [
        (str(message["Subject"]), message.get_content())
        for message in mailbox.messages
        if message["To"] == address
    ]


async def test_admins_are_emailed_in_their_language_of_trials_payments_cards_and_plan_changes(
    mailed: tuple[RunningHub, Mailbox, LocalStripe],
) -> None:
    hub, mailbox, server = mailed
    organization: Organization = await register(hub, language="en", name="Nour Perfumes")
    async with hub.client(organization.admin.token) as client:
        started = await client.post(
            "/api/billing/subscribe",
            json={"plan": "starter", "interval": "month", "billing_email": "pay@nour.example"},
        )
    assert started.status_code == 201, started.text
    second = await add_member(hub, organization, "admin")
    agent = await add_member(hub, organization, "agent")
    async with hub.runtime.db.session(organization.id) as session:
        await session.execute(update(User).where(User.id == second.user_id).values(preferred_language="ar"))
        await session.commit()
    mailbox.messages.clear()  # the invitations
    subscription_id = (await server.client().v1.subscriptions.list_async({"limit": 1})).data[0].id
    trial_end = int(datetime(2027, 1, 20, tzinfo=UTC).timestamp())

    await post_event(
        hub,
        server,
        event(
            "customer.subscription.trial_will_end",
            {"id": subscription_id, "object": "subscription", "trial_end": trial_end},
        ),
    )
    english = organization.admin.email
    arabic = second.email
    await eventually(lambda: mail_to(mailbox, english) and mail_to(mailbox, arabic))
    [(subject, body)] = mail_to(mailbox, english)
    assert subject == "Your trial of Nour Perfumes ends on January 20, 2027"
    assert "Add a card" in body
    [(subject, _)] = mail_to(mailbox, arabic)
    assert "تنتهي" in subject
    assert "يناير" in subject

    await post_event(
        hub,
        server,
        event(
            "invoice.payment_failed",
            {
                "id": "in_failed",
                "object": "invoice",
                "subscription": subscription_id,
                "amount_due": 2900,
                "currency": "usd",
            },
        ),
    )
    await eventually(lambda: len(mail_to(mailbox, english)) == 2)
    subject, body = mail_to(mailbox, english)[1]
    assert subject == "A payment for Nour Perfumes failed"
    assert "$29.00" in body
    assert "7 days" in body
    await eventually(lambda: len(mail_to(mailbox, arabic)) == 2)
    subject, body = mail_to(mailbox, arabic)[1]
    assert "تعذّر تحصيل" in subject
    assert "29.00" in body  # as Arabic writes money
    assert "7 أيام" in body

    # The bank wants the payment confirmed: the admins get the invoice's page.
    await post_event(
        hub,
        server,
        event(
            "invoice.payment_action_required",
            {
                "id": "in_3ds",
                "object": "invoice",
                "subscription": subscription_id,
                "amount_due": 2900,
                "currency": "usd",
                "hosted_invoice_url": "https://invoice.stripe.com/i/acct_1/in_3ds",
            },
        ),
    )
    await eventually(lambda: len(mail_to(mailbox, english)) == 3)
    subject, body = mail_to(mailbox, english)[2]
    assert subject == "A payment for Nour Perfumes needs your confirmation"
    assert "https://invoice.stripe.com/i/acct_1/in_3ds" in body
    await eventually(lambda: len(mail_to(mailbox, arabic)) == 3)  # both admins told before starting afresh
    mailbox.messages.clear()

    # The plan changes: told once, though Stripe's event about it comes after.
    async with hub.client(organization.admin.token) as client:
        upgraded = await client.post("/api/billing/change-plan", json={"plan": "pro", "interval": "month"})
    assert upgraded.status_code == 200, upgraded.text
    await eventually(lambda: len(mail_to(mailbox, english)) == 1)
    assert mail_to(mailbox, english)[0][0] == "Nour Perfumes is now on the Pro plan"
    await post_event(
        hub,
        server,
        event("customer.subscription.updated", {"id": subscription_id, "object": "subscription"}),
    )

    # A card that expires this month: told once per card.
    this_month = datetime.now(UTC).strftime("%Y-%m")
    async with hub.runtime.db.session(organization.id) as session:
        await session.execute(update(Subscription).values(card_last4="4242", card_expires=this_month))
        await session.commit()
    assert await warn_expiring_cards(hub.runtime) == 1
    assert await warn_expiring_cards(hub.runtime) == 0
    await eventually(lambda: len(mail_to(mailbox, english)) == 2)
    subject, body = mail_to(mailbox, english)[1]
    assert subject == "The card Nour Perfumes pays with expires soon"
    assert "ending 4242" in body
    await eventually(lambda: len(mail_to(mailbox, arabic)) == 2)
    assert len(mail_to(mailbox, english)) == 2  # nothing twice
    assert mail_to(mailbox, agent.email) == []  # admins only


SMALL_PLANS = """
currency = "usd"

[plans.small]
name = { en = "Small", ar = "الصغيرة" }
monthly = 0
yearly = 0
modules = ["whatsapp"]
[plans.small.limits]
agents = 8
storage_mb = 1

[plans.large]
name = { en = "Large", ar = "الكبيرة" }
monthly = 1000
yearly = 10000
modules = ["whatsapp"]
"""


@pytest.fixture(params=["sqlite", "postgres"])
async def small(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunningHub]:
    plans = tmp_path / "plans.toml"
    plans.write_text(SMALL_PLANS, encoding="utf-8")
    async with billed_hub(request, tmp_path, plans) as (hub, _server):
        yield hub


async def test_seats_and_storage_are_counted_told_at_80_and_100_percent_and_refused_past_the_plan(
    small: RunningHub,
) -> None:
    hub = small
    organization = await with_every_role(hub)
    pushes = await capture_pushes(hub, organization)  # one more agent: five seats of eight
    try:
        async with hub.client(organization.admin.token, language="en") as client:
            # An open invitation holds its seat: six, then seven (87%: told), then eight (told).
            for number in range(3):
                invited = await client.post(
                    "/api/users/invite", json={"email": f"new{number}@acme.example", "role": "agent"}
                )
                assert invited.status_code == 201, invited.text
            told = await pushes.expect("usageUpdated", to={"admin"}, where=lambda p: p["percent"] == 80)
            assert told == {"limit": "agents", "used": 7, "value": 8, "percent": 80}
            told = await pushes.expect("usageUpdated", to={"admin"}, where=lambda p: p["percent"] == 100)
            assert told == {"limit": "agents", "used": 8, "value": 8, "percent": 100}
            refused = await client.post(
                "/api/users/invite", json={"email": "c@acme.example", "role": "agent"}
            )
            assert refused.status_code == 402, refused.text
            assert (refused.json()["limit"], refused.json()["value"], refused.json()["plan"]) == (
                "agents",
                8,
                "large",
            )

            # Storage: what the team uploads counts against the plan's megabyte; what customers
            # send is never refused.
            files = {"data": ("menu.png", tiny_png(), "image/png")}
            assert (await client.post("/api/media", files=files)).status_code == 201
            state = (await client.get("/api/billing/subscription")).json()
            usage = {row["limit"]: (row["used"], row["value"]) for row in state["usage"]}
            assert usage["storage_mb"] == (1, 1)
            assert usage["agents"] == (8, 8)
            assert state["in_force_plan"] == "small"
            big = tiny_png() + b"\0" * (1024 * 1024)
            too_big = await client.post("/api/media", files={"data": ("big.png", big, "image/png")})
            assert too_big.status_code == 402, too_big.text
            assert too_big.json()["limit"] == "storage_mb"
            assert "Storage" in too_big.json()["detail"]
    finally:
        await pushes.close()
