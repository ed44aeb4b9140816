"""Subscriptions and Stripe's webhooks, through the real `stripe` library against localstripe:
an admin subscribes (the Stripe customer made once, the plan's trial given), the state is read
with the usage against every limit; Stripe's events, signed by localstripe or by the test as
Stripe signs them, are applied once, from Stripe's object as it is now, so a late or repeated
event never rolls the state back; a bad or stale signature changes nothing."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from hub.billing.models import BillingEvent, Subscription
from hub.billing.services import SHIPPED_PLANS, apply_pending_change
from hub.models import ScheduledJob
from tests.conftest import (
    Organization,
    RunningHub,
    add_member,
    eventually,
    register,
)
from tests.helpers.billing import LocalStripe, billed_hub, signed

WEBHOOK = "/api/billing/webhooks/stripe"


@pytest.fixture(params=["sqlite", "postgres"])
async def billed(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[RunningHub, LocalStripe]]:
    async with billed_hub(request, tmp_path, SHIPPED_PLANS) as (hub, server):
        await server.send_webhooks_to(f"{hub.url}{WEBHOOK}")
        yield hub, server


async def subscription(hub: RunningHub, token: str, language: str = "en") -> dict[str, Any]:
    async with hub.client(token, language=language) as client:
        answer = await client.get("/api/billing/subscription")
    assert answer.status_code == 200, answer.text
    return answer.json()


async def events_noted(hub: RunningHub, *event_ids: str) -> int:
    """How many Stripe events the hub noted as applied (of these ids, if given)."""
    statement = select(func.count()).select_from(BillingEvent)
    if event_ids:
        statement = statement.where(BillingEvent.stripe_event_id.in_(event_ids))
    async with hub.runtime.db.system_session() as session:
        return int(await session.scalar(statement) or 0)


async def post_event(hub: RunningHub, body: bytes, signature: str | None) -> Any:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    async with hub.client() as client:
        return await client.post(WEBHOOK, content=body, headers=headers)


async def test_an_admin_subscribes_with_the_plans_trial_and_reads_the_state(
    billed: tuple[RunningHub, LocalStripe],
) -> None:
    hub, server = billed
    organization: Organization = await register(hub, name="Nour Perfumes")
    before = await subscription(hub, organization.admin.token)
    assert before["status"] == "none"
    assert before["plan"] is None

    async with hub.client(organization.admin.token, language="en") as client:
        unknown = await client.post(
            "/api/billing/subscribe",
            json={"plan": "gold", "interval": "month", "billing_email": "pay@nour.example"},
        )
        assert unknown.status_code == 400
        assert unknown.json()["errors"][0]["field"] == "plan"
        weekly = await client.post(
            "/api/billing/subscribe",
            json={"plan": "pro", "interval": "week", "billing_email": "pay@nour.example"},
        )
        assert weekly.status_code == 400
        assert weekly.json()["errors"][0]["field"] == "interval"
        started = await client.post(
            "/api/billing/subscribe",
            json={"plan": "pro", "interval": "month", "billing_email": "pay@nour.example"},
        )
    assert started.status_code == 201, started.text
    state = started.json()
    assert state["plan"] == "pro"
    assert state["plan_name"] == "Pro"
    assert state["interval"] == "month"
    assert state["status"] == "trialing"
    trial_end = datetime.fromisoformat(state["trial_end"])
    assert abs(trial_end - (datetime.now(UTC) + timedelta(days=14))) < timedelta(minutes=5)
    usage = {row["limit"]: row for row in state["usage"]}
    assert usage["agents"] == {"limit": "agents", "name": "Agents", "used": 1, "value": 20}
    assert usage["whatsapp_profiles"]["used"] == 0
    assert usage["api_channels"]["used"] == 0
    assert usage["messages_per_month"]["used"] == 0
    assert usage["messages_per_month"]["value"] == 200000

    # Stripe has one customer for the organization, with its name and billing e-mail.
    customers = (await server.client().v1.customers.list_async({"limit": 100})).data
    assert [(c.name, c.email) for c in customers] == [("Nour Perfumes", "pay@nour.example")]

    # A second subscription is refused: the plan is changed instead.
    async with hub.client(organization.admin.token) as client:
        again = await client.post(
            "/api/billing/subscribe",
            json={"plan": "starter", "interval": "year", "billing_email": "pay@nour.example"},
        )
    assert again.status_code == 409

    # localstripe tells the hub of the subscription it made, signed; the hub notes each event once.
    await eventually(lambda: _at_least(hub, 1), within=15)

    # Managers read it, in their language; agents and managers do not subscribe.
    manager = await add_member(hub, organization, "manager")
    arabic = await subscription(hub, manager.token, language="ar")
    assert arabic["plan_name"] == "الاحترافية"
    assert arabic["status"] == "trialing"
    agent = await add_member(hub, organization, "agent")
    async with hub.client(agent.token) as client:
        assert (await client.get("/api/billing/subscription")).status_code == 403
    async with hub.client(manager.token) as client:
        body = {"plan": "pro", "interval": "month", "billing_email": "x@nour.example"}
        assert (await client.post("/api/billing/subscribe", json=body)).status_code == 403


async def _at_least(hub: RunningHub, count: int) -> bool:
    return await events_noted(hub) >= count


async def test_webhooks_are_believed_only_signed_and_fresh_and_applied_once_from_stripes_state(
    billed: tuple[RunningHub, LocalStripe],
) -> None:
    hub, server = billed
    organization = await register(hub)
    async with hub.client(organization.admin.token) as client:
        started = await client.post(
            "/api/billing/subscribe",
            json={"plan": "starter", "interval": "year", "billing_email": "b@acme.example"},
        )
    assert started.status_code == 201, started.text
    subscription_id = (await server.client().v1.subscriptions.list_async({"limit": 10})).data[0].id
    await eventually(lambda: _at_least(hub, 1), within=15)

    # A late event that says the subscription was cancelled: Stripe says it is trialing now, so
    # trialing it stays; the same event again is acknowledged as a repeat.
    late = {
        "id": "evt_late_cancel",
        "object": "event",
        "type": "customer.subscription.updated",
        "created": int(time.time()) - 3600,
        "data": {"object": {"id": subscription_id, "object": "subscription", "status": "canceled"}},
    }
    body, signature = signed(late, server.webhook_secret, at=int(time.time()))
    first = await post_event(hub, body, signature)
    assert first.status_code == 200, first.text
    assert first.json() == {"received": True, "duplicate": False}
    assert (await subscription(hub, organization.admin.token))["status"] == "trialing"
    repeat = await post_event(hub, body, signature)
    assert repeat.json() == {"received": True, "duplicate": True}
    assert await events_noted(hub, "evt_late_cancel") == 1

    # Unsigned, signed with another secret, or signed six minutes ago: 400 naming the header,
    # and nothing noted or changed.
    other = {**late, "id": "evt_forged"}
    body, _ = signed(other, server.webhook_secret, at=int(time.time()))
    _, forged = signed(other, "whsec_someone_else", at=int(time.time()))
    stale_body, stale = signed(other, server.webhook_secret, at=int(time.time()) - 360)
    for attempt_body, attempt_signature in ((body, None), (body, forged), (stale_body, stale)):
        refused = await post_event(hub, attempt_body, attempt_signature)
        assert refused.status_code == 400, refused.text
        assert refused.json()["errors"][0]["field"] == "Stripe-Signature"
    assert await events_noted(hub, "evt_forged") == 0
    assert (await subscription(hub, organization.admin.token))["status"] == "trialing"

    # An event type the hub has no use for is acknowledged and noted.
    unknown = {
        "id": "evt_unknown",
        "object": "event",
        "type": "customer.tax_id.created",
        "data": {"object": {}},
    }
    body, signature = signed(unknown, server.webhook_secret, at=int(time.time()))
    answer = await post_event(hub, body, signature)
    assert answer.status_code == 200
    assert await events_noted(hub, "evt_unknown") == 1

    # Stripe ends the subscription: its deletion event is applied.
    await server.client().v1.subscriptions.cancel_async(subscription_id)
    await eventually(lambda: _status_is(hub, organization, "canceled"), within=15)


async def _status_is(hub: RunningHub, organization: Organization, status: str) -> bool:
    return (await subscription(hub, organization.admin.token))["status"] == status


async def test_billing_endpoints_answer_that_billing_is_off(
    hub: RunningHub, organization: Organization
) -> None:
    async with hub.client(organization.admin.token, language="en") as client:
        for method, path in (("GET", "/api/billing/subscription"), ("POST", "/api/billing/subscribe")):
            answer = await client.request(method, path, json={})
            assert answer.status_code == 404, (path, answer.text)
            assert "Billing is not configured" in answer.text
    async with hub.client() as client:
        assert (await client.post(WEBHOOK, content=b"{}")).status_code == 404


async def test_plans_change_at_once_up_and_at_the_periods_end_down_and_subscriptions_cancel(
    billed: tuple[RunningHub, LocalStripe],
) -> None:
    hub, server = billed
    organization = await register(hub)
    admin = organization.admin.token
    stripe = server.client()
    async with hub.client(admin, language="en") as client:
        nothing = await client.post("/api/billing/change-plan", json={"plan": "pro", "interval": "month"})
        assert nothing.status_code == 409
        started = await client.post(
            "/api/billing/subscribe",
            json={"plan": "starter", "interval": "month", "billing_email": "b@acme.example"},
        )
        assert started.status_code == 201, started.text

        # Up: at once, on Stripe's subscription too.
        up = await client.post("/api/billing/change-plan", json={"plan": "pro", "interval": "month"})
        assert up.status_code == 200, up.text
        assert (up.json()["plan"], up.json()["pending_plan"]) == ("pro", None)
        subscription_id = (await stripe.v1.subscriptions.list_async({"limit": 10})).data[0].id
        found = (await stripe.v1.subscriptions.retrieve_async(subscription_id)).to_dict()
        assert found["items"]["data"][0]["plan"]["id"] == "hub-pro-month-usd-9900"
        same = await client.post("/api/billing/change-plan", json={"plan": "pro", "interval": "month"})
        assert same.status_code == 409

        # Down to Free while three people hold seats Free has two of: refused, naming the seats.
        await add_member(hub, organization, "manager")
        await add_member(hub, organization, "agent")
        over = await client.post("/api/billing/change-plan", json={"plan": "free", "interval": "month"})
        assert over.status_code == 409, over.text
        assert over.json()["over"] == [{"limit": "agents", "used": 3, "value": 2}]
        assert "Agents" in over.json()["detail"]
        assert "Free" in over.json()["detail"]

        # Down to Starter: waits for the period's end; Pro stays until then.
        down = await client.post("/api/billing/change-plan", json={"plan": "starter", "interval": "month"})
        assert down.status_code == 200, down.text
        assert (down.json()["plan"], down.json()["pending_plan"]) == ("pro", "starter")
    found = (await stripe.v1.subscriptions.retrieve_async(subscription_id)).to_dict()
    assert found["items"]["data"][0]["plan"]["id"] == "hub-pro-month-usd-9900"
    async with hub.runtime.db.session(organization.id) as session:
        job = await session.scalar(
            select(ScheduledJob).where(ScheduledJob.key == f"billing.plan_change:{organization.id}")
        )
        assert job is not None
        assert job.task_name == "billing.apply_plan_change"
        # The period ends (as the scheduler would find it, once its time came).
        row = await session.scalar(select(Subscription))
        assert row is not None
        row.current_period_end = datetime.now(UTC) - timedelta(seconds=1)
        await session.commit()
    await apply_pending_change(hub.runtime, organization.id)
    after = await subscription(hub, admin)
    assert (after["plan"], after["pending_plan"]) == ("starter", None)
    found = (await stripe.v1.subscriptions.retrieve_async(subscription_id)).to_dict()
    assert found["items"]["data"][0]["plan"]["id"] == "hub-starter-month-usd-2900"

    # Cancelled at the period's end: still on until then; then cancelled now.
    async with hub.client(admin) as client:
        later = await client.post("/api/billing/cancel", json={"at_period_end": True})
        assert later.status_code == 200, later.text
        assert later.json()["cancel_at_period_end"] is True
        assert later.json()["status"] == "trialing"
        now = await client.post("/api/billing/cancel", json={"at_period_end": False})
        assert now.status_code == 200, now.text
        assert now.json()["status"] == "canceled"
        again = await client.post("/api/billing/cancel", json={"at_period_end": False})
        assert again.status_code == 409


async def test_invoices_are_read_from_stripe_page_by_page(billed: tuple[RunningHub, LocalStripe]) -> None:
    hub, _server = billed
    organization = await register(hub)
    async with hub.client(organization.admin.token, language="en") as client:
        assert (await client.get("/api/billing/invoices")).json() == {"items": [], "next_cursor": None}
        started = await client.post(
            "/api/billing/subscribe",
            json={"plan": "free", "interval": "month", "billing_email": "b@acme.example"},
        )
        assert started.status_code == 201, started.text
        assert started.json()["status"] == "active"  # nothing to pay, no trial
        page = (await client.get("/api/billing/invoices")).json()
        assert len(page["items"]) == 1
        invoice = page["items"][0]
        assert (invoice["status"], invoice["amount_due"], invoice["currency"], invoice["display"]) == (
            "paid",
            0,
            "usd",
            "$0.00",
        )
        for cursor in ("not-a-cursor", "WyJ4Il0"):  # the second is a cursor naming no invoice id
            refused = await client.get("/api/billing/invoices", params={"cursor": cursor})
            assert refused.status_code == 400
            assert refused.json()["errors"][0]["field"] == "cursor"
