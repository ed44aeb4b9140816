"""Access in the browser: joining by invitation, resetting a forgotten password by its e-mailed
link, and the WhatsApp connect page following the QR code live."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from channels.whatsapp.session import qr_svg
from tests.conftest import PASSWORD, Mailbox, Organization, RunningHub, eventually, hub_with_mailbox, register
from tests.console.conftest import Console, open_console, sign_in

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_teammate_joins_by_invitation_in_arabic(
    hub: RunningHub, browser: Any, people: list[Console], organization: Organization
) -> None:
    admin = await sign_in(browser, hub, organization.admin, language="ar")
    people.append(admin)
    await admin.goto("/team")
    await admin.page.click(".page-header button.primary")
    email = f"sami-{uuid.uuid4().hex[:8]}@example.test"
    await admin.page.fill(".modal input[type=email]", email)
    await admin.page.select_option(".modal select", "agent")
    await admin.page.click(".modal button[type=submit]")
    link = await admin.page.text_content("[data-invitation-url]")
    assert link is not None
    assert "/accept-invitation?token=" in link

    await admin.page.keyboard.press("Escape")
    # Waiting in the team's list until it is accepted.
    await admin.page.locator("[data-pending] td", has_text=email).wait_for()

    newcomer = await open_console(browser, hub, language="ar")
    people.append(newcomer)
    await newcomer.page.goto(link)
    assert await newcomer.page.get_attribute("html", "dir") == "rtl"
    await newcomer.page.fill("input[name=full_name]", "سامي")
    await newcomer.page.fill("input[name=password]", "a long passphrase 2")
    await newcomer.screenshot("accept-invitation")
    await newcomer.page.click("button[type=submit]")
    await newcomer.page.wait_for_url("**/inbox")
    # An agent's console has no team, channels, campaigns or settings.
    assert await newcomer.page.locator("[data-nav]").evaluate_all(
        "links => links.map(l => l.dataset.nav)"
    ) == [
        "overview",
        "inbox",
        "customers",
        "pipeline",
        "tickets",
    ]
    await admin.page.reload()
    await admin.page.locator(".table:not([data-pending]) td", has_text=email).wait_for()
    assert await admin.page.locator("[data-pending] td", has_text=email).count() == 0


@pytest.fixture
async def mail_hub(tmp_path: Any) -> AsyncIterator[tuple[RunningHub, Mailbox]]:
    """An embedded hub sending its mail to a local server; its links start with its public URL."""
    async with hub_with_mailbox(tmp_path) as running:
        yield running


async def test_a_forgotten_password_is_reset_through_the_emailed_link(
    mail_hub: tuple[RunningHub, Mailbox], browser: Any, people: list[Console]
) -> None:
    hub, mailbox = mail_hub
    organization = await register(hub, language="en")
    console = await open_console(browser, hub, language="en")
    people.append(console)
    await console.goto("/login")
    await console.page.click("a[href='/forgot-password']")
    await console.page.fill("input[name=email]", organization.admin.email)
    await console.page.click("button[type=submit]")
    await console.page.wait_for_selector(".notice[role=status]")
    await eventually(lambda: mailbox.messages)
    body = mailbox.messages[0].get_payload(decode=True).decode()
    link = re.search(r"(http://127\.0\.0\.1:\d+/reset-password\?token=\S+)", body)
    assert link is not None, body
    await console.page.goto(link.group(1))
    await console.page.fill("input[name=password]", "a brand new passphrase")
    await console.page.click("button[type=submit]")
    await console.page.wait_for_selector(".notice[role=status]")
    await console.page.click("a[href='/login']")
    await console.page.fill("input[name=email]", organization.admin.email)
    await console.page.fill("input[name=password]", "a brand new passphrase")
    await console.page.click("button[type=submit]")
    await console.page.wait_for_selector(".shell")
    # Logging out ends the session: the token no longer works.
    token = await console.page.evaluate("JSON.parse(localStorage.getItem('hub.session')).access_token")
    await console.page.click(".sidebar-foot [data-action=logout]")
    await console.page.wait_for_url("**/login")
    await console.page.wait_for_timeout(300)
    assert await console.page.locator(".notice").count() == 0  # a logout is not an expired session
    async with hub.client(token) as client:
        assert (await client.get("/api/auth/me")).status_code == 401


async def test_the_whatsapp_page_follows_the_qr_code_until_the_phone_is_linked(
    hub: RunningHub, browser: Any, people: list[Console], organization: Organization
) -> None:
    async with hub.client(organization.admin.token) as client:
        profile = (await client.post("/api/whatsapp/profiles", json={"name": "Sales"})).json()
    admin = await sign_in(browser, hub, organization.admin)
    people.append(admin)
    await admin.goto(f"/channels/whatsapp/{profile['id']}")
    await admin.page.wait_for_selector("[data-connected=yes]")
    await admin.page.wait_for_selector(".connect[data-state]")

    # What the profile's session pushes when WhatsApp sends codes and when the phone links.
    async def push(event: str, data: dict[str, Any]) -> None:
        await hub.runtime.pusher.push(
            event,
            {"profileId": profile["id"], **data},
            organization_id=organization.id,
            roles=["admin", "manager"],
        )

    await push("qrCode", {"code": "2@first-code", "svg": qr_svg("2@first-code")})
    first = await admin.page.locator("[data-qr]").inner_html()
    await push("qrCode", {"code": "2@second-code", "svg": qr_svg("2@second-code")})

    async def replaced() -> bool:
        return bool(await admin.page.locator("[data-qr]").inner_html() != first)

    await eventually(replaced)
    await admin.screenshot("whatsapp-qr")
    await push("clientReady", {"phone": "+966500000009"})
    await admin.page.wait_for_selector(".connect[data-state=ready]")
    assert await admin.page.locator("[data-qr]").count() == 0


async def test_a_changed_role_changes_the_open_console_without_a_reload(
    hub: RunningHub, browser: Any, people: list[Console], organization: Organization
) -> None:
    manager = organization.members["manager"]
    console = await sign_in(browser, hub, manager)
    people.append(console)
    await console.page.wait_for_selector("[data-connected=yes]")
    assert await console.page.locator("[data-nav=campaigns]").count() == 1
    async with hub.client(organization.admin.token) as client:
        changed = await client.patch(f"/api/users/{manager.user_id}/role", json={"role": "agent"})
        assert changed.status_code == 200
    await console.page.locator("[data-nav=campaigns]").wait_for(state="detached")
    await console.page.wait_for_selector("[data-connected=yes]")
    assert await console.page.text_content(".sidebar-foot .who .muted") == "agent"


async def test_an_answer_refusing_the_old_token_after_a_new_password_signs_nobody_out(
    hub: RunningHub, browser: Any, people: list[Console]
) -> None:
    organization = await register(hub, language="en")
    here = await sign_in(browser, hub, organization.admin)
    people.append(here)
    await here.page.wait_for_selector("[data-connected=yes]")
    # The inbox's list is asked for with the session of now, and its answer held back until the
    # password has changed: the hub then refuses that token, as it must.
    changed = asyncio.Event()
    refused: list[int] = []

    async def held(route: Any) -> None:
        await changed.wait()
        answer = await route.fetch()
        refused.append(answer.status)
        await route.fulfill(response=answer)

    await here.page.route("**/api/inbox/conversations?*", held)
    await here.goto("/inbox")
    await here.page.click("[data-action=change-password]")
    await here.page.fill(".modal input[name=current_password]", PASSWORD)
    await here.page.fill(".modal input[name=password]", "a changed passphrase 6")
    await here.page.click(".modal button[type=submit]")
    await here.page.locator(".modal").wait_for(state="detached")
    changed.set()
    await eventually(lambda: refused)
    assert refused == [401]
    await here.page.unroute("**/api/inbox/conversations?*")
    # The refusal was for the token this tab has replaced: it stays signed in with the new one.
    await here.page.wait_for_selector("[data-connected=yes]")
    await here.goto("/inbox")
    await here.page.wait_for_selector(".shell")
    token = await here.page.evaluate("JSON.parse(localStorage.getItem('hub.session')).access_token")
    async with hub.client(token) as client:
        assert (await client.get("/api/auth/me")).status_code == 200


async def test_a_new_password_keeps_this_tab_signed_in_and_ends_the_other_sessions(
    hub: RunningHub, browser: Any, people: list[Console]
) -> None:
    organization = await register(hub, language="en")
    here = await sign_in(browser, hub, organization.admin)
    elsewhere = await sign_in(browser, hub, organization.admin)
    people.extend([here, elsewhere])
    for console in (here, elsewhere):
        await console.page.wait_for_selector("[data-connected=yes]")
    session_before = await here.page.evaluate("JSON.parse(localStorage.getItem('hub.session')).access_token")
    await here.page.click("[data-action=change-password]")
    await here.page.fill(".modal input[name=current_password]", "not the password")
    await here.page.fill(".modal input[name=password]", "a changed passphrase 5")
    await here.page.click(".modal button[type=submit]")
    await here.page.locator(".modal .field.has-error input[name=current_password]").wait_for()
    await here.page.fill(".modal input[name=current_password]", PASSWORD)
    await here.page.click(".modal button[type=submit]")
    await here.page.locator(".modal").wait_for(state="detached")
    # The other browser's session is over: it is back at the sign-in page.
    await elsewhere.page.wait_for_url("**/login")
    # This one goes on, live, with its new session (kept before the page is opened again: the
    # old socket's "connected" can still show a moment after the change).
    await here.page.wait_for_function(
        "token => JSON.parse(localStorage.getItem('hub.session') || '{}').access_token !== token",
        arg=session_before,
    )
    await here.page.wait_for_selector("[data-connected=yes]")
    await here.goto("/inbox")
    await here.page.wait_for_selector(".shell")
    token = await here.page.evaluate("JSON.parse(localStorage.getItem('hub.session')).access_token")
    async with hub.client(token) as client:
        assert (await client.get("/api/auth/me")).status_code == 200
