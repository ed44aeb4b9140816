"""The manager's pages in a real browser: a campaign watched to 100%, a deal dragged across the
pipeline, a ticket's live SLA clock, and every main page in both languages (screenshots saved)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from playwright.async_api import expect

from hub.db import utcnow
from tests.conftest import Organization, RunningHub, eventually
from tests.console.conftest import Console, sign_in
from tests.helpers.campaigns import fast_pacing
from tests.helpers.channels import Receiver, make_channel
from tests.helpers.tickets import fast_forward

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def api(hub: RunningHub, token: str, method: str, path: str, body: Any = None) -> Any:
    async with hub.client(token) as client:
        answer = await client.request(method, path, json=body)
    assert answer.status_code < 300, answer.text
    return answer.json() if answer.content else None


async def vip_customers(hub: RunningHub, token: str, count: int) -> list[dict[str, Any]]:
    made = []
    for number in range(count):
        made.append(
            await api(
                hub,
                token,
                "POST",
                "/api/crm/customers",
                {
                    "name": f"Customer {number}",
                    "phone": f"+9665510{number:05d}",
                    "tags": ["vip"],
                    "language": "ar" if number % 2 else "en",
                },
            )
        )
    return made


async def test_a_manager_builds_a_campaign_and_watches_it_reach_100_percent(
    hub: RunningHub, browser: Any, people: list[Console], organization: Organization, receiver: Receiver
) -> None:
    token = organization.admin.token
    channel = await make_channel(hub, organization, receiver)
    # Slow enough to pause it on the way even on a loaded machine, quick enough for a test: 12
    # messages in about 6 s.
    await fast_pacing(hub, token, channel.id, min_gap_seconds=0.5, jitter_seconds=0)
    await vip_customers(hub, token, 12)
    await api(
        hub,
        token,
        "POST",
        "/api/crm/customers",
        {"name": "Gone", "phone": "+966559999999", "tags": ["vip"], "opted_out": True},
    )
    await api(hub, token, "POST", "/api/crm/segments", {"name": "VIP", "filters": {"tags": ["vip"]}})

    manager = await sign_in(browser, hub, organization.members["manager"])
    people.append(manager)
    page = manager.page
    await manager.goto("/campaigns")
    await page.click("[data-action=new-campaign]")
    await page.fill("input[name=name]", "Ramadan offer")
    await page.select_option("select[name=segment]", label="VIP")
    counts = await page.text_content("[data-counts]")
    assert counts is not None
    assert "12" in counts
    assert "1" in counts
    await page.fill("textarea[name=template-ar]", "مرحبا {{first_name | صديقنا}}، خصم ٢٠٪ اليوم")
    await page.fill("textarea[name=template-en]", "Hello {{first_name | friend}}, 20% off today")
    # The preview follows the typing, one bubble per language.
    await page.locator("[data-preview=en]", has_text="20% off today").wait_for()
    await page.locator("[data-preview=ar]", has_text="خصم").wait_for()
    await page.check(f"input[name=channel][value='{channel.id}']")
    await manager.screenshot("campaign-new")
    await page.click("[data-action=save-campaign]")
    await page.wait_for_url("**/campaigns/*")
    start = page.locator("[data-action=start]")
    await start.wait_for()
    await page.locator("[data-action=start]:not([disabled])").wait_for()
    assert "12" in (await page.text_content("[data-audience]") or "")
    await start.click()
    # While it sends: an estimated finish; paused, nothing more goes out; resumed, it goes on.
    await page.wait_for_selector("[data-eta]:not([data-eta=''])")
    await page.click("[data-action=pause]")
    await page.wait_for_selector("[data-campaign-status=paused]")
    await manager.screenshot("campaign-paused")
    await page.wait_for_timeout(300)  # a send claimed just before the pause may still be on its way
    sent_when_paused = len(receiver.of_type("message"))
    await page.wait_for_timeout(1000)
    assert len(receiver.of_type("message")) == sent_when_paused < 12
    await page.click("[data-action=resume]")
    # Live progress, without a reload, to the end.
    await page.wait_for_selector("[data-progress='100']", timeout=60_000)
    await page.wait_for_selector("[data-campaign-status=completed]", timeout=30_000)
    assert await page.text_content("[data-count=sent]") == "12"
    assert await page.text_content("[data-count=remaining]") == "0"
    await page.wait_for_selector("[data-chart=per-minute] rect")
    assert len(receiver.of_type("message")) == 12
    await manager.screenshot("campaign")


@pytest.mark.parametrize("hub", ["sqlite"], indirect=True)
async def test_a_campaign_from_a_csv_file_counts_and_explains_its_rows(
    hub: RunningHub,
    browser: Any,
    people: list[Console],
    organization: Organization,
    receiver: Receiver,
    tmp_path: Any,
) -> None:
    channel = await make_channel(hub, organization, receiver)
    table = tmp_path / "customers.csv"
    table.write_text(
        "mobile,name\n+966551230001,Noura\nnot a number,Bad\n+966551230002,Fahad\n+966551230001,Noura again\n"
    )
    manager = await sign_in(browser, hub, organization.members["manager"])
    people.append(manager)
    page = manager.page
    await manager.goto("/campaigns/new")
    await page.fill("input[name=name]", "From a file")
    await page.click(".tabs button >> nth=2")
    await page.set_input_files("input[type=file][accept*=csv]", str(table))
    await page.fill("input[dir=ltr] >> nth=0", "mobile")
    await page.fill("textarea[name=template-en]", "Hello {{first_name | friend}}")
    await page.check(f"input[name=channel][value='{channel.id}']")
    await page.click("[data-action=save-campaign]")
    await page.wait_for_url("**/campaigns/*")
    # Two will be sent; the unreadable number is named with its line, the repeat counted.
    report = page.locator("[data-audience]")
    await report.wait_for()
    text = await report.text_content() or ""
    assert text.startswith("2 will be sent.")
    assert "1 duplicates" in text
    assert "1 unreadable numbers" in text
    await page.locator(".errors li", has_text="Line 3").wait_for()
    await manager.screenshot("campaign-from-file")


async def test_a_deal_is_dragged_to_another_stage(
    hub: RunningHub, browser: Any, people: list[Console], organization: Organization
) -> None:
    token = organization.admin.token
    stages = await api(hub, token, "GET", "/api/crm/sales-stages")
    [customer] = await vip_customers(hub, token, 1)
    deal = await api(
        hub,
        token,
        "POST",
        "/api/crm/deals",
        {"title": "Wedding cake", "customer_id": customer["id"], "amount": "1500", "currency": "SAR"},
    )
    assert deal["stage_id"] == stages[0]["id"]
    manager = await sign_in(browser, hub, organization.members["manager"])
    people.append(manager)
    page = manager.page
    await manager.goto("/pipeline")
    card = page.locator("[data-deal='Wedding cake']")
    target = page.locator(f"[data-stage='{stages[2]['name']}']")
    await card.drag_to(target)
    await target.locator("[data-deal='Wedding cake']").wait_for()

    async def moved() -> bool:
        found = await api(hub, token, "GET", f"/api/crm/deals/{deal['id']}")
        return bool(found["stage_id"] == stages[2]["id"])

    await eventually(moved)
    # The totals of both stages follow the deal.
    await target.locator("[data-totals]", has_text="1,500").wait_for()
    source = page.locator(f"[data-stage='{stages[0]['name']}'] [data-totals]")
    assert "1,500" not in (await source.text_content() or "")
    await manager.screenshot("pipeline")


# The clocks are the same on both databases: once is enough.
@pytest.mark.parametrize("hub", ["sqlite"], indirect=True)
async def test_a_ticket_shows_its_sla_clock_turning_at_risk_then_breached(
    hub: RunningHub, browser: Any, people: list[Console], organization: Organization
) -> None:
    token = organization.admin.token
    await api(
        hub,
        token,
        "PUT",
        "/api/tickets/sla-policies/urgent",
        {"first_response_minutes": 1, "resolution_minutes": 120, "business_hours_only": False},
    )
    ticket = await api(hub, token, "POST", "/api/tickets", {"title": "Oven broken", "priority": "urgent"})
    manager = await sign_in(browser, hub, organization.members["manager"])
    people.append(manager)
    page = manager.page
    await manager.goto(f"/tickets/{ticket['id']}")
    response_clock = page.locator(".sla-box [data-sla]").first
    assert await response_clock.get_attribute("data-sla") == "running"
    before = await response_clock.text_content()
    await page.wait_for_timeout(1500)
    assert await response_clock.text_content() != before

    # Assignment and a comment show up in the timeline as they happen.
    await page.select_option("[data-control=assignee]", str(organization.members["agent"].user_id))
    await page.fill("form textarea", "Technician booked for tomorrow")
    await page.click("form button.primary")
    await page.locator(".comments li", has_text="Technician booked").wait_for()
    await page.locator(".timeline-list [data-kind=assignee]").wait_for()

    # The hub warns (at 80% of the target), then the target passes: the page follows both live.
    # The target's moments are brought a few seconds ahead rather than waited for.
    soon = utcnow()
    await fast_forward(
        hub,
        organization.id,
        ticket["id"],
        first_response_warn_at=soon + timedelta(seconds=2),
        first_response_due_at=soon + timedelta(seconds=8),
    )
    await page.wait_for_selector(".sla-box [data-sla=at-risk]", timeout=30_000)
    await manager.screenshot("ticket-at-risk")
    await page.wait_for_selector(".sla-box [data-sla=breached]", timeout=30_000)
    await page.locator(".timeline-list [data-kind=sla_breached]").wait_for()
    assert await page.locator(".sla-box [data-sla=running]").count() == 1  # resolution still runs
    await manager.screenshot("ticket")


# The pages are the same on both databases; their screenshots are taken once.
@pytest.mark.slow
@pytest.mark.parametrize("hub", ["sqlite"], indirect=True)
@pytest.mark.parametrize("language", ["en", "ar"])
async def test_every_main_page_opens_in_both_languages(
    hub: RunningHub,
    browser: Any,
    people: list[Console],
    organization: Organization,
    receiver: Receiver,
    language: str,
) -> None:
    token = organization.admin.token
    channel = await make_channel(hub, organization, receiver)
    posted = await channel.send(
        external_id="p-1", **{"from": "+966501110000"}, name="Noura", text="السلام عليكم"
    )
    chat_id = posted.json()["conversation_id"]
    customer = (await api(hub, token, "GET", f"/api/inbox/conversations/{chat_id}"))["customer"]
    await api(
        hub,
        token,
        "POST",
        "/api/crm/deals",
        {"title": "Catering", "customer_id": customer["id"], "amount": "4200"},
    )
    ticket = await api(
        hub,
        token,
        "POST",
        "/api/tickets",
        {"title": "Late delivery", "conversation_id": chat_id, "priority": "high"},
    )
    admin = await sign_in(browser, hub, organization.admin, language=language)
    people.append(admin)
    pages = {
        "overview": "/overview",
        "inbox": f"/inbox/{chat_id}",
        "customers": "/customers",
        "customer": f"/customers/{customer['id']}",
        "pipeline": "/pipeline",
        "tickets": "/tickets",
        "ticket-page": f"/tickets/{ticket['id']}",
        "campaigns": "/campaigns",
        "campaign-form": "/campaigns/new",
        "channels": "/channels",
        "team": "/team",
        "settings": "/settings",
    }
    for name, path in pages.items():
        await admin.goto(path)
        await admin.page.wait_for_selector(".shell")
        await expect(admin.page.locator(".loading")).to_have_count(0)
        assert await admin.page.get_attribute("html", "dir") == ("rtl" if language == "ar" else "ltr")
        await admin.screenshot(f"page-{name}")
    # The overview counts what the test made: one open conversation, waiting for someone; one ticket.
    await admin.goto("/overview")
    await admin.page.locator("[data-tile=unassigned] .tile-value", has_text="1").wait_for()
    assert await admin.page.text_content("[data-tile=tickets] .tile-value") == "1"
    # The settings' last tab: the inbox's assignment, the modules and this month's usage.
    await admin.goto("/settings")
    await admin.page.click(".tabs button >> nth=4")
    await admin.page.wait_for_selector("[data-usage=messages_sent]")
    await admin.screenshot("page-settings-workspace")
    assert admin.errors == []
