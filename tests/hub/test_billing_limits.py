"""Limits of the plan in force, enforced where the work happens with 402 naming the limit, its
value and the plan that lifts it (in the caller's language): seats, channels, messages sent,
campaign recipients (before any send), and modules (work in one; reading is never refused).
Inbound messages are never refused for billing: over every limit, customers' words still land."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from hub.billing.models import Subscription
from hub.billing.services import apply_subscription
from tests.conftest import (
    Organization,
    RunningHub,
    add_member,
    capture_pushes,
    eventually,
    register,
)
from tests.helpers.billing import LocalStripe, billed_hub
from tests.helpers.campaigns import (
    CountingReceiver,
    api_channel,
    customers,
    poster,
    ready_campaign,
    serve_receiver,
)

# A free plan with room for very little, and a paid one without limits.
PLANS = """
currency = "usd"

[plans.tiny]
name = { en = "Tiny", ar = "الصغيرة" }
monthly = 0
yearly = 0
modules = ["whatsapp", "crm", "campaigns"]
[plans.tiny.limits]
agents = 2
whatsapp_profiles = 1
api_channels = 1
messages_per_month = 2
campaign_recipients_per_month = 1

[plans.roomy]
name = { en = "Roomy", ar = "الواسعة" }
monthly = 5000
yearly = 50000
trial_days = 7
modules = ["whatsapp", "crm", "campaigns", "ticketing"]

[plans.team]
name = { en = "Team", ar = "الفريق" }
monthly = 2000
yearly = 20000
trial_days = 7
modules = ["whatsapp", "crm", "campaigns", "ticketing"]
[plans.team.limits]
agents = 10
messages_per_month = 5

[plans.steady]
name = { en = "Steady", ar = "الثابتة" }
monthly = 1000
yearly = 10000
modules = ["whatsapp"]
"""


@pytest.fixture(params=["sqlite", "postgres"])
async def limited(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunningHub]:
    plans = tmp_path / "plans.toml"
    plans.write_text(PLANS, encoding="utf-8")
    async with billed_hub(request, tmp_path, plans) as (hub, _server):
        yield hub


@pytest.fixture(params=["sqlite", "postgres"])
async def limited_with_stripe(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[RunningHub, LocalStripe]]:
    plans = tmp_path / "plans.toml"
    plans.write_text(PLANS, encoding="utf-8")
    async with billed_hub(request, tmp_path, plans) as (hub, server):
        yield hub, server


def refused_for(answer: Any, limit: str, value: int, plan: str | None) -> str:
    assert answer.status_code == 402, answer.text
    body = answer.json()
    assert (body["limit"], body["value"], body["plan"]) == (limit, value, plan)
    return str(body["detail"])


async def test_each_limit_of_the_free_plan_is_402_where_the_work_happens(limited: RunningHub) -> None:
    hub = limited
    organization: Organization = await register(hub)
    admin = organization.admin.token

    # Seats: the admin and one more; the third is refused, naming the plan that lifts it.
    await add_member(hub, organization, "manager")
    async with hub.client(admin, language="en") as client:
        third = await client.post("/api/users/invite", json={"email": "third@acme.example", "role": "agent"})
    assert "Roomy" in refused_for(third, "agents", 2, "roomy")
    async with hub.client(admin, language="ar") as client:
        third = await client.post("/api/users/invite", json={"email": "third@acme.example", "role": "agent"})
    assert "الواسعة" in refused_for(third, "agents", 2, "roomy")

    # Channels: one API channel and one WhatsApp number.
    box = CountingReceiver()
    runner = await serve_receiver(box)
    try:
        channel = await api_channel(hub, organization, box)
        async with hub.client(admin) as client:
            second = await client.post(
                "/api/channels", json={"type": "api", "name": "Shop", "webhook_url": box.url}
            )
            refused_for(second, "api_channels", 1, "roomy")
            assert (await client.post("/api/whatsapp/profiles", json={"name": "Sales"})).status_code == 201
            refused_for(
                await client.post("/api/whatsapp/profiles", json={"name": "Support"}),
                "whatsapp_profiles",
                1,
                "roomy",
            )

        # Messages sent: two replies a month; the third is refused, a private note never is.
        sent = await poster(channel).send(external_id="in-1", **{"from": "+966500000301"}, text="hello")
        assert sent.status_code == 202, sent.text
        chat = sent.json()["conversation_id"]
        async with hub.client(admin) as client:
            for number in range(2):
                reply = await client.post(
                    f"/api/inbox/conversations/{chat}/messages", json={"text": f"r{number}"}
                )
                assert reply.status_code == 201, reply.text
            await eventually(lambda: len(box.messages) >= 2, within=20)

            async def refused_reply() -> Any:
                answer = await client.post(
                    f"/api/inbox/conversations/{chat}/messages", json={"text": "third"}
                )
                return answer if answer.status_code == 402 else None

            refused_for(await eventually(refused_reply, within=20), "messages_per_month", 2, "roomy")
            note = await client.post(
                f"/api/inbox/conversations/{chat}/messages", json={"text": "a note", "private": True}
            )
            assert note.status_code == 201, note.text

        # Over every limit, the customer's words still land and are shown.
        later = await poster(channel).send(
            external_id="in-2", **{"from": "+966500000301"}, text="still there?"
        )
        assert later.status_code == 202, later.text
        async with hub.client(admin) as client:
            page = (await client.get(f"/api/inbox/conversations/{chat}/messages")).json()
        assert "still there?" in [m["text"] for m in page["items"]]

        # Campaign recipients: the month holds one; an audience of two is refused before any send.
        people = await customers(
            hub,
            organization,
            [{"name": "Huda", "phone": "+966500000311"}, {"name": "Omar", "phone": "+966500000312"}],
        )
        campaign = await ready_campaign(
            hub,
            admin,
            {
                "name": "Offer",
                "channel_ids": [channel["id"]],
                "template": {"ar": "عرض", "en": "Offer"},
                "audience": {"customer_ids": [p["id"] for p in people]},
            },
        )
        async with hub.client(admin) as client:
            started = await client.post(f"/api/campaigns/{campaign['id']}/start")
            refused_for(started, "campaign_recipients_per_month", 1, "roomy")
            assert (await client.get(f"/api/campaigns/{campaign['id']}")).json()["status"] == "draft"
        assert not [m for m in box.messages if m.get("text") == "Offer"]

        # A module the plan leaves out: reading it is fine, working in it is 402.
        async with hub.client(admin, language="en") as client:
            assert (await client.get("/api/tickets")).status_code == 200
            opened = await client.post("/api/tickets", json={"title": "Broken bottle"})
        assert opened.status_code == 402, opened.text
        assert opened.json()["module"] == "ticketing"
        assert opened.json()["plan"] == "roomy"
        assert "Roomy" in opened.json()["detail"]
    finally:
        await runner.cleanup()


async def test_a_payment_due_past_the_grace_period_restricts_until_it_is_paid(limited: RunningHub) -> None:
    hub = limited
    organization = await register(hub)
    admin = organization.admin.token
    box = CountingReceiver()
    runner = await serve_receiver(box)
    try:
        channel = await api_channel(hub, organization, box)
        async with hub.client(admin) as client:
            subscribed = await client.post(
                "/api/billing/subscribe",
                json={"plan": "roomy", "interval": "month", "billing_email": "p@acme.example"},
            )
        assert subscribed.status_code == 201, subscribed.text

        async def due_since(days: float, status: str = "past_due") -> None:
            # What Stripe's past_due subscription leaves in the hub (apply_subscription notes when).
            async with hub.runtime.db.session(organization.id) as session:
                row = await session.scalar(select(Subscription))
                assert row is not None
                apply_subscription(row, {**_stripe_state(row), "status": status}, seen_at=datetime.now(UTC))
                if status == "past_due":
                    row.past_due_since = datetime.now(UTC) - timedelta(days=days)
                await session.commit()

        invite = {"email": "new@acme.example", "role": "agent"}
        await due_since(3)  # within the week of grace: the plan holds
        async with hub.client(admin) as client:
            assert (await client.post("/api/users/invite", json=invite)).status_code == 201
        await due_since(8)  # past it: restricted
        async with hub.client(admin, language="en") as client:
            refused = await client.post("/api/users/invite", json={**invite, "email": "other@acme.example"})
            assert refused.status_code == 402, refused.text
            assert refused.json()["restricted"] is True
            assert "payment is due" in refused.json()["detail"]
            ticket = await client.post("/api/tickets", json={"title": "Broken bottle"})
            assert ticket.status_code == 402
            assert (await client.get("/api/billing/subscription")).status_code == 200  # reads
        # Customers still write in, and are read.
        landed = await poster(channel).send(external_id="due-1", **{"from": "+966500000401"}, text="hello?")
        assert landed.status_code == 202, landed.text
        await due_since(0, status="active")  # paid: lifted at once
        async with hub.client(admin) as client:
            assert (
                await client.post("/api/users/invite", json={**invite, "email": "other@acme.example"})
            ).status_code == 201
    finally:
        await runner.cleanup()


def _stripe_state(row: Subscription) -> dict[str, Any]:
    """The subscription as Stripe would send it, from what the hub keeps."""
    return {
        "id": row.stripe_subscription_id,
        "customer": row.stripe_customer_id,
        "status": row.status,
        "metadata": {"hub_plan": row.plan_code},
        "items": {"data": [{"plan": {"interval": row.interval, "metadata": {"hub_plan": row.plan_code}}}]},
        "cancel_at_period_end": False,
    }


async def test_a_plan_without_a_trial_needs_a_card_first(limited: RunningHub) -> None:
    hub = limited
    organization = await register(hub)
    async with hub.client(organization.admin.token, language="en") as client:
        refused = await client.post(
            "/api/billing/subscribe",
            json={"plan": "steady", "interval": "month", "billing_email": "p@acme.example"},
        )
        assert refused.status_code == 402, refused.text
        assert refused.json()["errors"][0]["field"] == "payment_method"
        assert "card" in refused.json()["detail"]
        assert (await client.get("/api/billing/subscription")).json()["status"] == "none"  # nothing kept


async def test_a_card_confirmed_in_the_browser_becomes_the_default_and_pays_a_plan_without_trial(
    limited_with_stripe: tuple[RunningHub, LocalStripe],
) -> None:
    hub, server = limited_with_stripe
    stripe = server.client()
    organization = await register(hub)
    neighbour = await register(hub, name="Neighbour")
    async with hub.client(organization.admin.token, language="en") as client:
        nameless = await client.post("/api/billing/payment-method", json={})
        assert nameless.status_code == 400
        assert nameless.json()["errors"][0]["field"] == "billing_email"
        setup = await client.post("/api/billing/payment-method", json={"billing_email": "pay@acme.example"})
        assert setup.status_code == 201, setup.text
        intent = setup.json()["setup_intent"]
        assert setup.json()["client_secret"]
        early = await client.post("/api/billing/payment-method/confirm", json={"setup_intent": intent})
        assert early.status_code == 409, early.text

        # The browser: Stripe.js saves the card with Stripe and confirms the SetupIntent.
        card = await stripe.v1.payment_methods.create_async(
            {
                "type": "card",
                "card": {"number": "4242424242424242", "exp_month": 4, "exp_year": 2030, "cvc": "123"},
            }
        )
        await stripe.v1.setup_intents.confirm_async(intent, {"payment_method": card.id})

        # Another organization cannot take this card by naming its SetupIntent.
        async with hub.client(neighbour.admin.token) as other:
            await other.post("/api/billing/payment-method", json={"billing_email": "n@neighbour.example"})
            stolen = await other.post("/api/billing/payment-method/confirm", json={"setup_intent": intent})
            assert stolen.status_code == 404
            forged = await other.post(
                "/api/billing/payment-method/confirm", json={"setup_intent": "seti_../../x"}
            )
            assert forged.status_code == 400

        confirmed = await client.post("/api/billing/payment-method/confirm", json={"setup_intent": intent})
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json()["card"] == {"brand": "visa", "last4": "4242", "expires": "2030-04"}
        customer = (await stripe.v1.customers.list_async({"limit": 10})).data
        mine = next(c for c in customer if c.email == "pay@acme.example").to_dict()
        assert mine["invoice_settings"]["default_payment_method"] == card.id

        # Now a plan without a trial is paid at once.
        started = await client.post(
            "/api/billing/subscribe",
            json={"plan": "steady", "interval": "month", "billing_email": "pay@acme.example"},
        )
        assert started.status_code == 201, started.text
        assert started.json()["status"] == "active"
        invoices = (await client.get("/api/billing/invoices")).json()["items"]
        assert [(i["status"], i["amount_paid"], i["display"]) for i in invoices] == [("paid", 1000, "$10.00")]


async def test_admins_are_told_when_the_months_messages_cross_80_and_100_percent(limited: RunningHub) -> None:
    hub = limited
    organization = await register(hub)
    admin = organization.admin.token
    async with hub.client(admin) as client:
        subscribed = await client.post(
            "/api/billing/subscribe",
            json={"plan": "team", "interval": "month", "billing_email": "p@acme.example"},
        )
    assert subscribed.status_code == 201, subscribed.text
    organization.members["admin"] = organization.admin
    for role in ("manager", "member", "agent"):
        await add_member(hub, organization, role)
    box = CountingReceiver()
    runner = await serve_receiver(box)
    pushes = await capture_pushes(hub, organization)
    try:
        channel = await api_channel(hub, organization, box)
        sent = await poster(channel).send(external_id="u-1", **{"from": "+966500000501"}, text="hi")
        chat = sent.json()["conversation_id"]
        async with hub.client(admin) as client:
            for number in range(4):  # 4 of 5: past 80%
                answer = await client.post(
                    f"/api/inbox/conversations/{chat}/messages", json={"text": f"r{number}"}
                )
                assert answer.status_code == 201, answer.text
            told = await pushes.expect("usageUpdated", to={"admin"}, where=lambda p: p["percent"] == 80)
            assert told == {"limit": "messages_per_month", "used": 4, "value": 5, "percent": 80}
            answer = await client.post(f"/api/inbox/conversations/{chat}/messages", json={"text": "r4"})
            assert answer.status_code == 201, answer.text
            told = await pushes.expect("usageUpdated", to={"admin"}, where=lambda p: p["percent"] == 100)
            assert told == {"limit": "messages_per_month", "used": 5, "value": 5, "percent": 100}
    finally:
        await pushes.close()
        await runner.cleanup()
