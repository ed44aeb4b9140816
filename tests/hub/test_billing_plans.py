"""Billing's plans: the operator's plans file, checked whole and refused with its faulty line;
`hub billing sync-plans` making Stripe's products and prices (localstripe, through the real
`stripe` library) and the hub's plans match it, again and again the same; the plans listed in
the reader's language with their prices written as that language writes money; and billing off,
with no limits, when no Stripe key is configured."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.billing.services import SHIPPED_PLANS, PlansFileError, read_plans
from tests.conftest import (
    Organization,
    RunningHub,
    add_member,
    child_environment,
    register,
)
from tests.helpers.billing import LocalStripe, billed_hub

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = SHIPPED_PLANS.read_text(encoding="utf-8")


def line_of(text: str, fragment: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), start=1) if fragment in line)


def test_the_shipped_plans_file_names_the_four_plans() -> None:
    specs = {spec.code: spec for spec in read_plans(SHIPPED_PLANS)}
    assert list(specs) == ["free", "starter", "pro", "enterprise"]
    assert specs["free"].monthly == 0
    assert specs["pro"].monthly == 9900
    assert specs["pro"].yearly == 99000
    assert specs["pro"].currency == "usd"
    assert specs["pro"].trial_days == 14
    assert specs["pro"].names == {"en": "Pro", "ar": "الاحترافية"}
    assert specs["pro"].limits["agents"] == 20
    assert specs["enterprise"].limits["agents"] is None  # -1: unlimited
    assert "ai" not in specs["starter"].modules


@pytest.mark.parametrize(
    ("before", "after", "named_line", "words"),
    [
        ("monthly = 9900\n", "", "[plans.pro]", "plans.pro.monthly (the price) is missing"),
        ("agents = 20\n", "agents = -5\n", "agents = -5", "plans.pro.limits.agents must be 0 or more"),
        ("storage_mb = 50000\n", "storage_mb = 50000\nseats = 3\n", "seats = 3", "is not a limit"),
        (
            'modules = ["whatsapp", "crm", "ticketing", "campaigns", "ai"]\n[plans.pro.limits]',
            'modules = ["whatsapp", "billing"]\n[plans.pro.limits]',
            'modules = ["whatsapp", "billing"]',
            "plans.pro.modules may hold only",
        ),
        ('name = { en = "Pro", ar = "الاحترافية" }', 'name = { en = "Pro" }', 'name = { en = "Pro" }', "ar"),
    ],
)
def test_a_faulty_plans_file_is_refused_naming_its_line(
    tmp_path: Path, before: str, after: str, named_line: str, words: str
) -> None:
    start = SHIPPED.index("[plans.pro]")
    text = SHIPPED[:start] + SHIPPED[start:].replace(before, after, 1)
    assert text != SHIPPED
    path = tmp_path / "plans.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PlansFileError) as refused:
        read_plans(path)
    assert f"line {line_of(text, named_line)}:" in str(refused.value)
    assert words in str(refused.value)


def test_a_plans_file_that_is_not_toml_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "plans.toml"
    path.write_text(SHIPPED.replace("trial_days = 14", "trial_days = = 14", 1), encoding="utf-8")
    with pytest.raises(PlansFileError, match=r"line \d+"):
        read_plans(path)


def sync_plans(hub: RunningHub, server: LocalStripe, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", "billing", "sync-plans", str(path)],
        cwd=ROOT,
        env=child_environment(hub.settings, **server.settings()),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(params=["sqlite", "postgres"])
async def billed(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[RunningHub, LocalStripe]]:
    async with billed_hub(request, tmp_path) as (hub, server):
        yield hub, server


async def listed(hub: RunningHub, token: str, language: str) -> dict[str, dict]:
    async with hub.client(token, language=language) as client:
        answer = await client.get("/api/billing/plans")
    assert answer.status_code == 200, answer.text
    return {plan["code"]: plan for plan in answer.json()}


async def test_plans_are_synced_to_stripe_once_and_a_new_price_replaces_the_old(
    billed: tuple[RunningHub, LocalStripe], tmp_path: Path
) -> None:
    hub, server = billed
    organization: Organization = await register(hub)
    stripe = server.client()

    synced = await asyncio.to_thread(sync_plans, hub, server, SHIPPED_PLANS)
    assert synced.returncode == 0, synced.stderr
    products = (await stripe.v1.products.list_async({"limit": 100})).data
    assert sorted(p.id for p in products) == [
        "hub-plan-enterprise",
        "hub-plan-free",
        "hub-plan-pro",
        "hub-plan-starter",
    ]
    prices = (await stripe.v1.plans.list_async({"limit": 100})).data
    assert len(prices) == 8
    assert {p.id for p in prices if p.product == "hub-plan-pro"} == {
        "hub-pro-month-usd-9900",
        "hub-pro-year-usd-99000",
    }

    # Again: nothing new in Stripe.
    again = await asyncio.to_thread(sync_plans, hub, server, SHIPPED_PLANS)
    assert again.returncode == 0, again.stderr
    assert len((await stripe.v1.products.list_async({"limit": 100})).data) == 4
    assert len((await stripe.v1.plans.list_async({"limit": 100})).data) == 8

    # Pro costs more now, and Enterprise is no longer sold.
    changed = tmp_path / "plans.toml"
    text = SHIPPED.replace("monthly = 9900", "monthly = 10900", 1)
    changed.write_text(text[: text.index("[plans.enterprise]")], encoding="utf-8")
    moved = await asyncio.to_thread(sync_plans, hub, server, changed)
    assert moved.returncode == 0, moved.stderr
    # (localstripe keeps a flag set by an update as the text it was sent: "false".)
    pro = {
        p.id: str(p.active).lower() == "true"
        for p in (await stripe.v1.plans.list_async({"limit": 100})).data
        if p.product == "hub-plan-pro"
    }
    assert pro == {
        "hub-pro-month-usd-9900": False,  # sold no more; who has it keeps it
        "hub-pro-month-usd-10900": True,
        "hub-pro-year-usd-99000": True,
    }

    english = await listed(hub, organization.admin.token, "en")
    assert list(english) == ["free", "starter", "pro"]
    assert english["pro"]["name"] == "Pro"
    monthly = next(price for price in english["pro"]["prices"] if price["interval"] == "month")
    assert monthly == {"interval": "month", "amount": 10900, "currency": "usd", "display": "$109.00"}
    agents = next(limit for limit in english["pro"]["limits"] if limit["limit"] == "agents")
    assert agents == {"limit": "agents", "name": "Agents", "value": 20}
    arabic = await listed(hub, organization.admin.token, "ar")
    assert arabic["pro"]["name"] == "الاحترافية"
    yearly = next(price for price in arabic["pro"]["prices"] if price["interval"] == "year")
    assert "US$" in yearly["display"]
    assert "990" in yearly["display"]
    assert next(limit for limit in arabic["pro"]["limits"] if limit["limit"] == "agents")["name"] != "Agents"

    # Managers read the plans (agents may not: tests/hub/test_billing_subscriptions.py).
    manager = await add_member(hub, organization, "manager")
    assert list(await listed(hub, manager.token, "en")) == ["free", "starter", "pro"]


async def test_a_faulty_plans_file_changes_nothing(
    billed: tuple[RunningHub, LocalStripe], tmp_path: Path
) -> None:
    hub, server = billed
    organization = await register(hub)
    faulty = tmp_path / "plans.toml"
    faulty.write_text(SHIPPED.replace("agents = 20", "agents = -5", 1), encoding="utf-8")
    refused = await asyncio.to_thread(sync_plans, hub, server, faulty)
    assert refused.returncode == 2
    assert f"line {line_of(faulty.read_text(encoding='utf-8'), 'agents = -5')}" in refused.stderr
    assert (await server.client().v1.products.list_async({"limit": 100})).data == []
    assert await listed(hub, organization.admin.token, "en") == {}


async def test_billing_is_off_without_a_stripe_key(hub: RunningHub, organization: Organization) -> None:
    async with hub.client(organization.admin.token, language="en") as client:
        answer = await client.get("/api/billing/plans")
    assert answer.status_code == 404
    assert "Billing is not configured" in answer.text
