"""AI help in the browser, against the local OpenAI-protocol server: the agent asks for a reply,
watches it fill the reply box, improves it, and reads a summary; in Arabic and English."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from tests.conftest import RunningHub, add_member, eventually, make_settings, register, start_hub
from tests.console.conftest import Console, sign_in
from tests.helpers.campaigns import CountingReceiver, api_channel, poster, serve_receiver
from tests.helpers.openai_server import ANSWER_PREFIX, OpenAIServer, ai_settings, openai_server

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
async def assisted(tmp_path: Path) -> AsyncIterator[tuple[RunningHub, OpenAIServer]]:
    async with openai_server() as server:
        hub = await start_hub(make_settings(tmp_path, **ai_settings(server)), kind="sqlite")
        try:
            yield hub, server
        finally:
            await hub.stop()


@pytest.mark.parametrize("language", ["en", "ar"])
async def test_an_agent_asks_for_a_reply_improves_it_and_reads_a_summary(
    assisted: tuple[RunningHub, OpenAIServer], browser: Any, people: list[Console], language: str
) -> None:
    hub, _server = assisted
    organization = await register(hub, language=language)
    agent = await add_member(hub, organization, "agent")
    box = CountingReceiver()
    runner = await serve_receiver(box)
    try:
        channel = await api_channel(hub, organization, box)
        sent = await poster(channel).send(
            external_id="c-1", **{"from": "+966500000801"}, name="Huda", text="Is the shop open on Friday?"
        )
        chat = sent.json()["conversation_id"]
        async with hub.client(organization.admin.token) as client:
            await client.post(
                f"/api/inbox/conversations/{chat}/assign", json={"assignee_id": str(agent.user_id)}
            )
        console = await sign_in(browser, hub, agent, language=language)
        people.append(console)
        page = console.page
        await console.goto(f"/inbox/{chat}")
        await page.wait_for_selector(".message.inbound")

        words = {"en": "Suggest a reply", "ar": "اقترح ردًّا"}[language]
        await expect(page.locator("[data-action=ai-suggest]")).to_have_text(words)

        # The hub's answer naming the request is held back until the whole reply has come on the
        # socket (as a quick AI server and a slow network can have it): it is heard all the same.
        async def late(route: Any) -> None:
            answer = await route.fetch()
            await asyncio.sleep(1)
            await route.fulfill(response=answer)

        await page.route("**/ai/suggest-reply", late)
        await page.click("[data-action=ai-suggest]")
        reply = page.locator("textarea[name=reply]")
        # (Waited on with Playwright's own checks: the page's policy forbids evaluating strings.)
        await expect(reply).to_have_value(re.compile(rf"^{ANSWER_PREFIX} Is the shop open on Friday\?"))

        # Written whole (the Stop button gives way to the tools again) before the agent types.
        await expect(page.locator("[data-action=ai-suggest]")).to_be_visible()
        await reply.fill("we open at ten")
        await page.select_option("[data-action=ai-improve]", "shorter")
        await expect(reply).to_have_value(re.compile(rf"^{ANSWER_PREFIX} we open at ten"))

        await page.click("[data-action=ai-summarize]")
        summary = page.locator("[data-summary]")
        await summary.wait_for()
        await page.wait_for_function(
            "document.querySelector('[data-summary]').textContent.includes('Customer:')"
        )
        await console.screenshot("ai-assist")
        assert box.messages == []  # nothing went to the customer
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("language", ["en", "ar"])
async def test_a_manager_writes_an_article_and_the_suggestion_names_it(
    assisted: tuple[RunningHub, OpenAIServer], browser: Any, people: list[Console], language: str
) -> None:
    hub, server = assisted
    organization = await register(hub, language=language)
    manager = await add_member(hub, organization, "manager")
    box = CountingReceiver()
    runner = await serve_receiver(box)
    try:
        console = await sign_in(browser, hub, manager, language=language)
        people.append(console)
        page = console.page
        await console.goto("/settings")
        await page.click("text=" + {"en": "AI help", "ar": "المساعدة الذكية"}[language])
        await page.click("[data-action=new-article]")
        form = page.locator("[data-article-form]")
        await form.locator("input").first.fill("Friday hours")
        await form.locator("textarea").fill("The shop opens on Friday from four in the afternoon.")
        await form.locator("input").last.fill("hours, friday")
        await form.locator("button[type=submit]").click()
        article = page.locator("[data-article]")
        await expect(article).to_have_count(1)
        await expect(article.locator("strong")).to_have_text("Friday hours")
        # Searching finds it by a word of its text; another subject finds nothing.
        search = page.locator("[data-knowledge] input[type=search]")
        await search.fill("afternoon")
        await expect(article).to_have_count(1)
        await search.fill("refunds")
        await expect(article).to_have_count(0)

        channel = await api_channel(hub, organization, box)
        sent = await poster(channel).send(
            external_id="k-1", **{"from": "+966500000802"}, name="Huda", text="Is the shop open on Friday?"
        )
        chat = sent.json()["conversation_id"]
        server.answer = "Yes, from four in the afternoon [1]."
        await console.goto(f"/inbox/{chat}")
        await page.wait_for_selector(".message.inbound")
        await page.click("[data-action=ai-suggest]")
        await expect(page.locator("textarea[name=reply]")).to_have_value("Yes, from four in the afternoon.")
        sources = page.locator("[data-sources]")
        await expect(sources).to_contain_text({"en": "Based on:", "ar": "استنادًا إلى:"}[language])
        await expect(sources.locator(".source")).to_have_text(["Friday hours"])
        await console.screenshot("ai-knowledge")
        assert box.messages == []

        # The admin points the organization at its own server; the key is kept, never shown.
        admin = await sign_in(browser, hub, organization.admin, language=language)
        people.append(admin)
        await admin.goto("/settings")
        await admin.page.click("text=" + {"en": "AI help", "ar": "المساعدة الذكية"}[language])
        server_form = admin.page.locator("[data-ai-server]")
        await server_form.locator("input[type=url]").fill(server.url)
        await server_form.locator("input").nth(1).fill("own-chat")
        await server_form.locator("input[type=password]").fill("sk-own-console-key")
        await server_form.locator("button[type=submit]").click()
        await expect(admin.page.locator("[data-ai-source]")).to_have_text(
            {
                "en": "This organization uses its own AI server.",
                "ar": "تستخدم هذه المؤسسة خادم الذكاء الاصطناعي الخاص بها.",
            }[language]
        )
        await expect(server_form.locator("input[type=password]")).to_have_value("")
        await admin.page.click("[data-action=ai-installation]")
        await expect(admin.page.locator("[data-action=ai-installation]")).to_have_count(0)
    finally:
        server.answer = None
        await runner.cleanup()


@pytest.mark.parametrize("language", ["en", "ar"])
async def test_an_admin_turns_the_assistant_on_and_its_answers_are_marked(
    assisted: tuple[RunningHub, OpenAIServer], browser: Any, people: list[Console], language: str
) -> None:
    hub, server = assisted
    organization = await register(hub, language=language)
    box = CountingReceiver()
    runner = await serve_receiver(box)
    try:
        channel = await api_channel(hub, organization, box)
        async with hub.client(organization.admin.token) as client:
            article = {"title": "Friday hours", "body": "The shop opens on Friday from four."}
            assert (await client.post("/api/inbox/knowledge", json=article)).status_code == 201
        console = await sign_in(browser, hub, organization.admin, language=language)
        people.append(console)
        page = console.page
        await console.goto("/settings")
        await page.click("text=" + {"en": "AI help", "ar": "المساعدة الذكية"}[language])
        form = page.locator("[data-assistant]")
        await form.locator("[data-action=assistant-on]").check()
        await form.locator(f"[data-channel='{channel['id']}']").check()
        await form.locator("button[type=submit]").click()
        async with hub.client(organization.admin.token) as client:

            async def switched_on() -> bool:
                settings = (await client.get("/api/inbox/assistant")).json()
                return bool(settings["enabled"] and settings["channel_ids"] == [channel["id"]])

            await eventually(switched_on)

        server.answer = "Yes, from four [1]."
        sent = await poster(channel).send(
            external_id="a-1", **{"from": "+966500000803"}, name="Huda", text="Are you open on Friday?"
        )
        chat = sent.json()["conversation_id"]
        await eventually(lambda: box.messages)
        await console.goto(f"/inbox/{chat}")
        answer = page.locator(".message.by-assistant")
        await expect(answer.locator(".text")).to_have_text("Yes, from four.")
        await expect(answer.locator("[data-author]")).to_have_text(
            {"en": "Assistant", "ar": "المساعد"}[language]
        )
        await console.goto("/overview")
        report = page.locator("[data-assistant-report]")
        await expect(report.locator("[data-tile=answered] .tile-value")).to_have_text("1")
        await console.screenshot("ai-assistant")
    finally:
        server.answer = None
        await runner.cleanup()


async def test_a_ticket_is_summarized_and_the_summary_kept_as_a_comment(
    assisted: tuple[RunningHub, OpenAIServer], browser: Any, people: list[Console]
) -> None:
    hub, _server = assisted
    organization = await register(hub, language="en")
    async with hub.client(organization.admin.token) as client:
        made = await client.post("/api/tickets", json={"title": "Refund", "description": "Paid twice."})
        ticket = made.json()["id"]
    console = await sign_in(browser, hub, organization.admin, language="en")
    people.append(console)
    page = console.page
    await console.goto(f"/tickets/{ticket}")
    await page.click("[data-action=ai-summarize]")
    summary = page.locator("[data-summary]")
    await expect(summary).to_contain_text("Title: Refund")
    await page.click("[data-action=keep-summary]")
    await expect(page.locator(".comments li")).to_have_count(1)
    await expect(page.locator(".comments li").first).to_contain_text("Description: Paid twice.")
