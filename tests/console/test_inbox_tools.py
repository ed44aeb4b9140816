"""The reply box and the conversation's tools in the browser: canned responses, attachments,
reply-to, edit, delete, forward, snooze, a ticket from the chat, and the keyboard."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from playwright.async_api import TimeoutError as PlaywrightTimeout
from playwright.async_api import expect

from tests.conftest import Organization, RunningHub, eventually
from tests.console.conftest import Console, sign_in
from tests.helpers.channels import Receiver, make_channel, tiny_png

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_an_agent_answers_with_every_tool_of_the_conversation(
    hub: RunningHub,
    browser: Any,
    people: list[Console],
    organization: Organization,
    receiver: Receiver,
    tmp_path: Any,
) -> None:
    channel = await make_channel(hub, organization, receiver)
    agent_id = str(organization.members["agent"].user_id)
    first = await channel.send(
        external_id="t-1", **{"from": "+966500000101"}, name="Huda", text="Do you deliver?"
    )
    other = await channel.send(external_id="t-2", **{"from": "+966500000102"}, name="Khalid", text="Hi")
    chat_id, other_id = first.json()["conversation_id"], other.json()["conversation_id"]
    async with hub.client(organization.admin.token) as client:
        for conversation in (chat_id, other_id):
            await client.post(
                f"/api/inbox/conversations/{conversation}/assign", json={"assignee_id": agent_id}
            )
        created = await client.post(
            "/api/inbox/canned-responses",
            json={"shortcode": "hours", "content": "We are open from 9 to 9, every day."},
        )
        assert created.status_code == 201, created.text

    agent = await sign_in(browser, hub, organization.members["agent"])
    people.append(agent)
    page = agent.page
    await agent.goto(f"/inbox/{chat_id}")
    await page.wait_for_selector(".message.inbound")

    # A canned response by its shortcode: Enter takes the first match, Enter again sends it.
    await page.fill("textarea[name=reply]", "/hou")
    await page.locator(".canned", has_text="/hours").wait_for()
    await page.press("textarea[name=reply]", "Enter")
    assert await page.input_value("textarea[name=reply]") == "We are open from 9 to 9, every day."
    await page.press("textarea[name=reply]", "Enter")
    await eventually(lambda: receiver.of_type("message"))
    assert receiver.of_type("message")[-1]["text"] == "We are open from 9 to 9, every day."

    # An image, with a reply to the customer's message.
    picture = tmp_path / "menu.png"
    picture.write_bytes(tiny_png())
    await page.locator(".message.inbound").hover()
    await page.click(".message.inbound [aria-label=Reply]")
    await page.locator(".composer-context", has_text="Do you deliver?").wait_for()
    await page.set_input_files(".composer input[type=file]", str(picture))
    await page.fill("textarea[name=reply]", "Our menu")
    await page.click("[data-action=send]")
    await eventually(lambda: len(receiver.of_type("message")) == 2)
    sent = receiver.of_type("message")[-1]
    assert sent["attachments"][0]["content_type"] == "image/png"
    assert sent["reply_to"] == "t-1"
    outbound = page.locator(".message.outbound", has_text="Our menu")
    await outbound.locator("img").wait_for()
    await outbound.locator(".quoted", has_text="Do you deliver?").wait_for()

    # Edit, then delete, one's own message: both marked in place.
    await outbound.hover()
    await outbound.locator("[aria-label=Edit]").click()
    await page.fill("textarea[name=reply]", "Our menu, updated")
    await page.click("[data-action=send]")
    edited = page.locator(".message.outbound", has_text="Our menu, updated")
    await edited.locator(".edited").wait_for()
    page.once("dialog", lambda dialog: dialog.accept())
    await edited.hover()
    await edited.locator("[aria-label=Delete]").click()
    await page.locator(".message.deleted").wait_for()

    # Forward the customer's question to the other conversation.
    await page.locator(".message.inbound").hover()
    await page.click(".message.inbound [aria-label=Forward]")
    await page.click(".modal .pick-list button:has-text('Khalid')")
    await page.wait_for_selector(".toast")
    async with hub.client(organization.admin.token) as client:
        forwarded = (await client.get(f"/api/inbox/conversations/{other_id}/messages")).json()["items"]
    assert forwarded[0]["text"] == "Do you deliver?"

    # A label from the organization's list, on the conversation and in the list.
    async with hub.client(organization.admin.token) as client:
        assert (await client.post("/api/inbox/labels", json={"name": "wholesale"})).status_code == 201
    await page.click("[data-action=add-label]")
    await page.select_option("[data-control=label]", "wholesale")
    await page.locator("[data-labels] .chip", has_text="wholesale").wait_for()
    await page.locator(f"[data-conversation='{chat_id}'] .chip", has_text="wholesale").wait_for()

    # The customer writes of a problem: the hub suggests a ticket, and one click fills it in.
    await channel.send(
        external_id="t-3", **{"from": "+966500000101"}, name="Huda", text="The oven has a problem"
    )
    await page.locator("[data-suggestion]", has_text="problem").wait_for()
    await page.click("[data-suggestion] button.primary")
    assert "The oven has a problem" in await page.input_value(".modal textarea")
    await page.click(".modal button[type=submit]")
    await page.locator(".customer-panel .mini-list a").first.wait_for()

    # A ticket from the chat, then the customer's panel lists it.
    await page.click("[data-action=create-ticket]")
    await page.fill(".modal input[name=title]", "Delivery to Jeddah")
    await page.click(".modal button[type=submit]")
    await page.locator(".customer-panel .mini-list a", has_text="Delivery to Jeddah").wait_for()
    assert await page.locator(".customer-panel .mini-list a").count() == 2

    # Snooze: the conversation leaves the open view and shows when it comes back.
    await page.click(".menu-wrap > button")
    await page.click(".menu button >> nth=0")
    await page.locator(".notice.slim").wait_for()
    await page.locator(f"[data-conversation='{chat_id}']").wait_for(state="detached")

    # The keyboard: j opens the next conversation, e resolves it.
    await agent.goto("/inbox")
    await page.locator(f"[data-conversation='{other_id}']").wait_for()
    # The page listens for keys once it has drawn the list; a key pressed before that is not heard.
    for _ in range(5):
        await page.keyboard.press("j")
        with contextlib.suppress(PlaywrightTimeout):
            await page.wait_for_url(f"**/inbox/{other_id}", timeout=2000)
            break
    assert page.url.endswith(f"/inbox/{other_id}"), page.url
    await page.wait_for_selector(".message")
    await page.keyboard.press("e")
    await page.locator(f"[data-conversation='{other_id}']").wait_for(state="detached")
    async with hub.client(organization.admin.token) as client:
        assert (await client.get(f"/api/inbox/conversations/{other_id}")).json()["status"] == "resolved"
    await agent.screenshot("agent-tools")


@pytest.mark.slow
@pytest.mark.parametrize("hub", ["sqlite"], indirect=True)
async def test_the_conversation_list_shows_more_as_it_scrolls(
    hub: RunningHub, browser: Any, people: list[Console], organization: Organization, receiver: Receiver
) -> None:
    channel = await make_channel(hub, organization, receiver)
    for number in range(55):
        answer = await channel.send(
            external_id=f"s-{number}", **{"from": f"+96650100{number:04d}"}, name=f"P {number}", text="hi"
        )
        assert answer.status_code == 202
    manager = await sign_in(browser, hub, organization.members["manager"])
    people.append(manager)
    page = manager.page
    await page.locator("[data-conversation]").nth(49).wait_for()
    assert await page.locator("[data-conversation]").count() == 50
    await page.locator(".conversations").evaluate("list => list.scrollTo(0, list.scrollHeight)")
    await page.locator("[data-conversation]").nth(54).wait_for()
    assert await page.locator("[data-conversation]").count() == 55
    await expect(page.locator("[data-action=more]")).to_have_count(0)
