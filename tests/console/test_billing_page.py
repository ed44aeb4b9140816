"""The billing page in the browser, against localstripe: its own Content Security Policy (Stripe's
script allowed there and nowhere else), the plan's meters, a plan chosen with its trial, a card
typed into Stripe.js's fields and saved, and a limit hit elsewhere in the console shown with the
way to this page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Organization, RunningHub, make_settings, register, start_hub
from tests.console.conftest import Console, sign_in
from tests.helpers.billing import LocalStripe, local_stripe

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
async def billed(tmp_path: Path) -> AsyncIterator[tuple[RunningHub, LocalStripe]]:
    from hub.billing.services import SHIPPED_PLANS, read_plans, sync_plans

    async with local_stripe() as server:
        hub = await start_hub(make_settings(tmp_path, **server.settings()), kind="sqlite")
        try:
            await sync_plans(hub.runtime, read_plans(SHIPPED_PLANS))
            yield hub, server
        finally:
            await hub.stop()


async def test_an_admin_chooses_a_plan_saves_a_card_and_is_shown_the_way_when_a_limit_is_hit(
    billed: tuple[RunningHub, LocalStripe], browser: Any, people: list[Console]
) -> None:
    hub, server = billed
    organization: Organization = await register(hub, language="en", name="Nour Perfumes")
    admin = await sign_in(browser, hub, organization.admin)
    people.append(admin)
    page = admin.page

    # Stripe's script is allowed on the billing page alone.
    answer = await page.goto(f"{hub.url}/billing")
    policy = (await answer.all_headers())["content-security-policy"]
    assert f"script-src 'self' {server.url}" in policy
    assert f"connect-src 'self' {server.url}" in policy
    elsewhere = await page.request.get(f"{hub.url}/inbox")
    assert server.url not in elsewhere.headers["content-security-policy"]

    # The free plan's meters: one seat of two taken.
    await page.locator("[data-billing-status=none]").wait_for()
    agents = page.locator("[data-meter=agents]")
    assert "1 / 2" in await agents.inner_text()

    # A plan with a trial needs no card.
    await page.fill("input[name=billing_email]", "pay@nour.example")
    await page.click("[data-plan=starter] [data-action=choose-plan]")
    await page.locator("[data-billing-status=trialing]").wait_for()
    await page.locator("[data-plan=starter].current").wait_for()
    assert "1 / 5" in await page.locator("[data-meter=agents]").inner_text()

    # The card, typed into Stripe.js's own fields (localstripe's Stripe.js here).
    await page.click("[data-action=add-card]")
    field = page.locator(".card-field")
    await field.locator("input[placeholder=number]").wait_for()

    async def type_card(number: str) -> None:
        await field.locator("input[placeholder=number]").fill(number)
        await field.locator("input[placeholder=exp_month]").fill("12")
        await field.locator("input[placeholder=exp_year]").fill("31")
        await field.locator("input[placeholder=cvc]").fill("123")
        await field.locator("input[placeholder=postal_code]").fill("12345")
        await page.click("[data-action=save-card]")

    await type_card("4000000000000002")  # Stripe's card that is always declined
    await page.locator("[data-card] .failure", has_text="declined").wait_for()
    await page.click("[data-action=cancel-card]")
    await page.click("[data-action=add-card]")
    await field.locator("input[placeholder=number]").wait_for()
    await type_card("4242424242424242")
    shown = page.locator("[data-card-shown]")
    await shown.wait_for()
    assert "4242" in await shown.inner_text()
    assert "2031-12" in await shown.inner_text()
    customers = (await server.client().v1.customers.list_async({"limit": 5})).data
    assert customers[0].to_dict()["invoice_settings"]["default_payment_method"]

    # Leaving the billing page loads the next page afresh: Stripe's script is not carried along.
    await page.click("[data-nav=team]")
    await page.wait_for_url(f"{hub.url}/team")
    invite = page.locator(".page-header button.primary")
    await invite.wait_for()
    assert await page.evaluate("typeof window.Stripe") == "undefined"

    # Seats: the admin and four invitations fill the starter plan's five; the next is refused
    # with what was hit and the way to the billing page.
    async with hub.client(organization.admin.token) as client:
        for number in range(4):
            invited = await client.post(
                "/api/users/invite", json={"email": f"a{number}@nour.example", "role": "agent"}
            )
            assert invited.status_code == 201, invited.text
    await invite.click()
    await page.fill(".modal input[type=email]", "one-too-many@nour.example")
    await page.click(".modal button[type=submit]")
    # (The admins were told a moment ago, live, that the seats were used up.)
    await page.locator("[data-toast]", has_text="A limit of your plan is used up.").wait_for()
    refused = page.locator("[data-toast=error]", has_text="Agents: your plan allows 5. The Pro plan")
    await refused.wait_for()
    await refused.locator("[data-toast-link]").click()
    await page.wait_for_url(f"{hub.url}/billing")
    await page.locator("[data-meter=agents][data-level=full]").wait_for()


async def test_a_manager_reads_billing_in_arabic_and_an_installation_without_billing_has_no_page(
    billed: tuple[RunningHub, LocalStripe], hub: RunningHub, browser: Any, people: list[Console]
) -> None:
    from tests.conftest import add_member

    billed_hub, _server = billed
    organization = await register(billed_hub, language="ar", name="عطور نور")
    manager = await add_member(billed_hub, organization, "manager")
    reader = await sign_in(browser, billed_hub, manager, language="ar")
    people.append(reader)
    await reader.goto("/billing")
    page = reader.page
    await page.locator("[data-meter=agents]").wait_for()
    assert await page.evaluate("document.documentElement.dir") == "rtl"
    assert "الخطة المجانية" in await page.locator("[data-billing-status=none] h2").inner_text()
    assert "غير محدود" in await page.locator("[data-plan=enterprise]").inner_text()
    assert await page.locator("[data-action=choose-plan]").count() == 0  # managers read
    await reader.screenshot("billing")

    # The session hub bills nobody: no billing in the navigation, and its page leads elsewhere.
    other = await register(hub)
    admin = await sign_in(browser, hub, other.admin)
    people.append(admin)
    assert await admin.page.locator("[data-nav=billing]").count() == 0
    await admin.goto("/billing")
    await admin.page.wait_for_url(f"{hub.url}/overview")
