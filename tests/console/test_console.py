"""The console in a real browser: a newcomer's first reply, an agent and a manager working live,
a campaign watched to the end, the pipeline board, and every page in Arabic and English."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import pytest

from tests.conftest import Organization, RunningHub, eventually
from tests.console.conftest import Console, open_console, sign_in
from tests.helpers.channels import Receiver, make_channel

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def signed_post(url: str, secret: str, payload: dict[str, Any]) -> httpx.Response:
    """What the README's curl command does: sign `timestamp.body` with the channel's secret."""
    body = json.dumps(payload)
    moment = str(int(time.time()))
    digest = hmac.new(secret.encode(), f"{moment}.{body}".encode(), hashlib.sha256).hexdigest()
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(
            url,
            content=body,
            headers={"content-type": "application/json", "X-Hub-Signature": f"t={moment},v1={digest}"},
        )


@pytest.mark.parametrize("language", ["en", "ar"])
async def test_a_newcomer_registers_connects_a_channel_and_answers_a_customer(
    hub: RunningHub, browser: Any, people: list[Console], receiver: Receiver, language: str
) -> None:
    console = await open_console(browser, hub, language=language)
    people.append(console)
    page = console.page
    await console.goto("/")
    await page.wait_for_url("**/login")
    assert await page.get_attribute("html", "dir") == ("rtl" if language == "ar" else "ltr")
    await console.screenshot("login")
    await page.click("a[href='/register']")
    await page.fill("input[name=organization_name]", "مخبز الورد" if language == "ar" else "Rose Bakery")
    await page.fill("input[name=full_name]", "Amal")
    await page.fill("input[name=email]", f"amal-{language}-{hub.kind}-{time.time_ns()}@example.test")
    await page.fill("input[name=password]", "a long passphrase 1")
    await console.screenshot("register")
    await page.click("button[type=submit]")
    await page.wait_for_url("**/channels")

    await page.click("[data-action=new-api-channel]")
    await page.fill("input[name=name]", "Website")
    await page.fill("input[name=webhook_url]", receiver.url)
    await page.click(".modal button[type=submit]")
    inbound_url = (await page.text_content("[data-copy=inbound_url]")) or ""
    secret = (await page.text_content("[data-copy=secret]")) or ""
    receiver.secret = secret
    assert "openssl dgst -sha256 -hmac" in ((await page.text_content("pre.code")) or "")
    await console.screenshot("channel-created")
    await page.click("[data-created-channel] button.primary")
    await page.wait_for_url("**/inbox")
    await page.wait_for_selector("[data-connected=yes]")

    answer = await signed_post(
        inbound_url, secret, {"external_id": "m-1", "from": "+966501234567", "name": "Layla", "text": "مرحبا"}
    )
    assert answer.status_code == 202, answer.text
    # It arrives without a reload, unread.
    item = page.locator("[data-conversation]").first
    await item.wait_for()
    assert "Layla" in (await item.text_content() or "")
    assert await item.locator("[data-unread]").get_attribute("data-unread") == "1"
    await console.screenshot("inbox")

    await item.click()
    await page.wait_for_selector(".message.inbound")
    await page.fill("textarea[name=reply]", "أهلاً ليلى" if language == "ar" else "Hello Layla")
    await page.keyboard.press("Enter")
    await eventually(lambda: receiver.of_type("message"), within=15)
    sent = receiver.of_type("message")[0]
    assert sent["text"] == ("أهلاً ليلى" if language == "ar" else "Hello Layla")
    assert sent["to"] == "+966501234567"
    await page.wait_for_selector(".message.outbound [data-status=sent]")
    # Opening the conversation read it.
    await page.wait_for_selector("[data-conversation] [data-unread]", state="detached")
    await console.screenshot("conversation")


async def test_arabic_pages_are_right_to_left_and_mirror_directional_icons(
    hub: RunningHub, browser: Any, people: list[Console], organization: Organization
) -> None:
    arabic = await sign_in(browser, hub, organization.members["manager"], language="ar")
    english = await sign_in(browser, hub, organization.members["admin"], language="en")
    people += [arabic, english]
    for console, direction in ((arabic, "rtl"), (english, "ltr")):
        page = console.page
        assert await page.get_attribute("html", "dir") == direction
        sidebar = await page.locator(".sidebar").bounding_box()
        content = await page.locator(".content").bounding_box()
        assert sidebar is not None
        assert content is not None
        # The navigation sits at the start of the reading direction.
        assert (sidebar["x"] > content["x"]) == (direction == "rtl")
        transform = await page.eval_on_selector(
            ".sidebar-foot .icon-directional", "element => getComputedStyle(element).transform"
        )
        assert (transform == "matrix(-1, 0, 0, 1, 0, 0)") == (direction == "rtl")
    assert await arabic.page.text_content("[data-nav=inbox]") == "صندوق الوارد"
    assert await english.page.text_content("[data-nav=inbox]") == "Inbox"

    # The switch changes the page at once and is remembered for the user.
    await arabic.page.click(".sidebar .language-switch")
    await arabic.page.locator("html[dir=ltr]").wait_for(state="attached")
    assert await arabic.page.text_content("[data-nav=inbox]") == "Inbox"
    async with hub.client(organization.members["manager"].token) as client:
        assert (await client.get("/api/users/me")).json()["preferred_language"] == "en"
    await arabic.page.reload()
    await arabic.page.wait_for_selector(".shell")
    assert await arabic.page.get_attribute("html", "dir") == "ltr"


async def test_an_agent_and_a_manager_work_the_inbox_live(
    hub: RunningHub, browser: Any, people: list[Console], organization: Organization, receiver: Receiver
) -> None:
    channel = await make_channel(hub, organization, receiver)
    agent = await sign_in(browser, hub, organization.members["agent"])
    manager = await sign_in(browser, hub, organization.members["manager"])
    people += [agent, manager]
    await agent.goto("/inbox")
    await manager.goto("/inbox")
    for console in (agent, manager):
        await console.page.wait_for_selector("[data-connected=yes]")

    # Agents see only what their role allows.
    assert await agent.page.locator("[data-nav=campaigns]").count() == 0
    assert await agent.page.locator("[data-nav=team]").count() == 0
    assert await manager.page.locator("[data-nav=campaigns]").count() == 1

    answer = await channel.send(external_id="m-1", **{"from": "+966500000001"}, name="Omar", text="My order?")
    assert answer.status_code == 202, answer.text
    chat_id = answer.json()["conversation_id"]
    await manager.page.locator(f"[data-conversation='{chat_id}']").wait_for()
    assert await agent.page.locator(f"[data-conversation='{chat_id}']").count() == 0

    await manager.page.click(f"[data-conversation='{chat_id}']")
    await manager.page.wait_for_selector(".message.inbound")
    await manager.page.select_option("[data-control=assignee]", str(organization.members["agent"].user_id))
    # The chat arrives in the agent's "Mine" without a reload.
    await agent.page.locator(f"[data-conversation='{chat_id}']").wait_for()
    await agent.page.click(f"[data-conversation='{chat_id}']")
    await agent.page.wait_for_selector(".message.inbound")
    await agent.page.fill("textarea[name=reply]", "It ships today.")
    await agent.page.click("[data-action=send]")
    await eventually(lambda: receiver.of_type("message"), within=15)
    assert receiver.of_type("message")[0]["text"] == "It ships today."
    # The manager, watching the same conversation, sees the reply appear.
    await manager.page.locator(".message.outbound", has_text="It ships today.").wait_for()

    # A private note stays in the hub; the customer's next message arrives in both views.
    await agent.page.click("label.toggle:has(input[type=checkbox])")
    await agent.page.fill("textarea[name=reply]", "Customer is in a hurry")
    await agent.page.click("[data-action=send]")
    await manager.page.locator(".message.private", has_text="Customer is in a hurry").wait_for()
    await channel.send(external_id="m-2", **{"from": "+966500000001"}, name="Omar", text="Thanks!")
    for console in (agent, manager):
        await console.page.locator(".message.inbound", has_text="Thanks!").wait_for()
    assert len(receiver.of_type("message")) == 1
    await agent.screenshot("agent-conversation")

    # Resolving takes it out of the open views.
    await agent.page.click(".conversation-controls button.primary")
    await agent.page.locator(f"[data-conversation='{chat_id}']").wait_for(state="detached")


async def test_a_lost_connection_resynchronizes_what_changed_meanwhile(
    hub: RunningHub, browser: Any, people: list[Console], organization: Organization, receiver: Receiver
) -> None:
    channel = await make_channel(hub, organization, receiver)
    manager = await sign_in(browser, hub, organization.members["manager"])
    people.append(manager)
    page = manager.page
    await page.wait_for_selector("[data-connected=yes]")
    await manager.context.set_offline(True)
    await page.wait_for_selector("[data-connected=no]")
    answer = await channel.send(external_id="m-off", **{"from": "+966500000002"}, name="Sara", text="Hello?")
    assert answer.status_code == 202
    chat_id = answer.json()["conversation_id"]
    assert await page.locator(f"[data-conversation='{chat_id}']").count() == 0
    await manager.context.set_offline(False)
    await page.wait_for_selector("[data-connected=yes]", timeout=30_000)
    await page.locator(f"[data-conversation='{chat_id}']").wait_for()
