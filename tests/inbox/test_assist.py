"""AI help for the agent, through the real `openai` library against a local server that speaks
its protocol: a suggested reply written token by token to the asking agent's sockets alone, from
the conversation and the customer's facts (never a private note or another organization's
words), a draft improved, a message translated, a summary; credits counted; the module switch;
and every way the AI server can fail told to the agent in their language without holding up a
reply."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from tests.conftest import (
    PASSWORD,
    Organization,
    RunningHub,
    capture_pushes,
    eventually,
    make_settings,
    register,
    start_hub,
    with_every_role,
)
from tests.helpers.campaigns import CountingReceiver, api_channel, poster, serve_receiver
from tests.helpers.openai_server import ANSWER_PREFIX, OpenAIServer, ai_settings, openai_server


async def a_conversation(
    hub: RunningHub,
    organization: Organization,
    box: CountingReceiver,
    text: str,
    sender: str = "+966500000601",
) -> str:
    channel = await api_channel(hub, organization, box)
    sent = await poster(channel).send(
        external_id=f"m-{sender}-{len(text)}", **{"from": sender}, name="Huda", text=text
    )
    assert sent.status_code == 202, sent.text
    return str(sent.json()["conversation_id"])


async def test_a_suggested_reply_is_written_to_the_asking_agent_alone_from_this_conversation(
    assisted: tuple[RunningHub, OpenAIServer],
) -> None:
    hub, server = assisted
    organization = await with_every_role(hub, language="en")
    box = CountingReceiver()
    runner = await serve_receiver(box)
    pushes = await capture_pushes(hub, organization)
    try:
        # Another organization's customer writes too: nothing of theirs may reach the AI.
        other = await register(hub, name="Other Trading")
        await a_conversation(hub, other, box, "SECRET of the other organization", sender="+966500000699")
        chat = await a_conversation(hub, organization, box, "Do you deliver to Jeddah?")
        agent = organization.members["agent"]
        async with hub.client(organization.admin.token) as client:
            await client.post(
                f"/api/inbox/conversations/{chat}/assign", json={"assignee_id": str(agent.user_id)}
            )
            note = await client.post(
                f"/api/inbox/conversations/{chat}/messages", json={"text": "internal: VIP", "private": True}
            )
            assert note.status_code == 201, note.text
        async with hub.client(agent.token, language="en") as client:
            asked = await client.post(f"/api/inbox/conversations/{chat}/ai/suggest-reply")
        assert asked.status_code == 202, asked.text
        request_id = asked.json()["request_id"]

        done = await pushes.expect("aiDone", to={"agent"}, where=lambda p: p["requestId"] == request_id)
        assert done["text"].startswith(f"{ANSWER_PREFIX} Do you deliver to Jeddah?")
        assert done["credits"] > 0
        await pushes.expect("aiChunk", to={"agent"}, where=lambda p: p["requestId"] == request_id)
        chunks = [p for p in pushes.sockets["agent"].named("aiChunk") if p["requestId"] == request_id]
        # Pieces that came together may be pushed together; all of them, in order, are the answer.
        assert "".join(p["text"] for p in chunks) == done["text"]

        # What was sent: this conversation and its customer's facts, no private note, no other
        # organization's words, with the installation's key.
        sent = server.chats()[-1]
        everything = " ".join(m["content"] for m in sent["messages"])
        assert "Do you deliver to Jeddah?" in everything
        assert "Huda" in everything
        assert "internal: VIP" not in everything
        assert "SECRET" not in everything
        assert server.keys[-1] == "Bearer sk-local-test"
        assert sent["stream"] is True

        # Nothing reached the customer.
        assert box.messages == []

        # Credits are counted in the month's usage.
        async with hub.client(organization.admin.token) as client:
            usage = (await client.get("/api/settings/usage")).json()
        assert usage["metrics"].get("ai_credits", 0) >= done["credits"]
    finally:
        await pushes.close()
        await runner.cleanup()


async def test_a_suggestion_is_grounded_in_the_knowledge_base_and_cites_what_it_used(
    assisted: tuple[RunningHub, OpenAIServer],
) -> None:
    hub, server = assisted
    organization = await with_every_role(hub, language="ar")
    box = CountingReceiver()
    runner = await serve_receiver(box)
    pushes = await capture_pushes(hub, organization)
    try:
        other = await with_every_role(hub)
        async with hub.client(other.admin.token) as client:
            theirs = {"title": "التوصيل عندنا", "body": "SECRET التوصيل إلى جدة مجاني"}
            assert (await client.post("/api/inbox/knowledge", json=theirs)).status_code == 201
        async with hub.client(organization.members["manager"].token) as client:
            delivery = (
                await client.post(
                    "/api/inbox/knowledge",
                    json={"title": "مدة التوصيل", "body": "يصل الطلب إلى جدة خلال يومين.", "tags": ["شحن"]},
                )
            ).json()
            await client.post(
                "/api/inbox/knowledge", json={"title": "Refunds", "body": "Refunds take five working days."}
            )
            saved = await client.post(
                "/api/inbox/canned-responses", json={"shortcode": "jeddah", "content": "نوصل إلى جدة كل يوم."}
            )
            assert saved.status_code == 201, saved.text

            # Each article's embedding is made after it is saved, by the AI server.
            async def embedded() -> bool:
                listed = (await client.get("/api/inbox/knowledge")).json()["items"]
                return all(item["found_by_meaning"] for item in listed)

            await eventually(embedded)
        assert any(
            request.get("input") == ["مدة التوصيل\n\nيصل الطلب إلى جدة خلال يومين."]
            for request in server.requests
        )

        chat = await a_conversation(hub, organization, box, "كم يستغرق التوصيل إلى جدة؟")
        server.answer = "يصل طلبك إلى جدة خلال يومين [1]، ونوصل كل يوم [2]."
        async with hub.client(organization.admin.token) as client:
            asked = await client.post(f"/api/inbox/conversations/{chat}/ai/suggest-reply")
        assert asked.status_code == 202, asked.text
        done = await pushes.expect(
            "aiDone", to={"admin"}, where=lambda p: p["requestId"] == asked.json()["request_id"]
        )
        # The marks are taken out of the text; what they named comes as the sources.
        assert done["text"] == "يصل طلبك إلى جدة خلال يومين، ونوصل كل يوم."
        assert done["sources"] == [
            {"id": delivery["id"], "title": "مدة التوصيل", "kind": "article"},
            {"id": saved.json()["id"], "title": "/jeddah", "kind": "canned"},
        ]
        # The question was also asked by meaning, and the prompt carried the organization's own
        # knowledge, numbered, and nothing of another organization's.
        assert any(request.get("input") == ["كم يستغرق التوصيل إلى جدة؟"] for request in server.requests)
        prompt = server.chats()[-1]["messages"][0]["content"]
        assert "[1] مدة التوصيل\nيصل الطلب إلى جدة خلال يومين." in prompt
        assert "[2] /jeddah\nنوصل إلى جدة كل يوم." in prompt
        assert "Refunds" not in prompt
        assert "SECRET" not in prompt
    finally:
        server.answer = None
        await pushes.close()
        await runner.cleanup()


async def test_an_organization_brings_its_own_ai_server_and_key(
    assisted: tuple[RunningHub, OpenAIServer],
) -> None:
    hub, installation = assisted
    organization = await with_every_role(hub, language="en")
    neighbour = await with_every_role(hub, language="en")
    box = CountingReceiver()
    runner = await serve_receiver(box)
    pushes = await capture_pushes(hub, organization)
    try:
        async with openai_server() as own:
            admin = organization.admin.token
            async with hub.client(admin) as client:
                assert (await client.get("/api/settings/ai")).json() == {
                    "source": "installation",
                    "base_url": None,
                    "model": None,
                    "embeddings_model": None,
                    "has_key": False,
                }
                # Only a public address, or one the operator allows (here: this machine's).
                for bad in ("http://10.20.30.40/v1", "ftp://ai.example.com/v1", "http://169.254.169.254/v1"):
                    refused = await client.put("/api/settings/ai", json={"base_url": bad, "model": "m"})
                    assert refused.status_code == 400, bad
                    assert refused.json()["errors"][0]["field"] == "base_url"
                saved = await client.put(
                    "/api/settings/ai",
                    json={"base_url": own.url, "model": "own-chat", "api_key": "sk-org-own-1234567890"},
                )
                assert saved.status_code == 200, saved.text
                assert saved.json() == {
                    "source": "organization",
                    "base_url": own.url,
                    "model": "own-chat",
                    "embeddings_model": None,
                    "has_key": True,
                }
                audit = await client.get("/api/audit")
                assert "sk-org-own" not in audit.text
            async with hub.client(organization.members["manager"].token) as client:
                assert (await client.get("/api/settings/ai")).json()["source"] == "organization"
                assert (
                    await client.put("/api/settings/ai", json={"base_url": own.url, "model": "x"})
                ).status_code == 403
            # Sealed where it is kept: the database holds no trace of the key itself.
            async with hub.runtime.db.system_session() as session:
                sealed = (
                    (await session.execute(text("SELECT api_key_sealed FROM ai_settings"))).scalars().all()
                )
            assert len(sealed) == 1
            assert "sk-org-own" not in sealed[0]

            chat = await a_conversation(hub, organization, box, "Where is my parcel?")
            async with hub.client(admin) as client:
                asked = await client.post(f"/api/inbox/conversations/{chat}/ai/suggest-reply")
            await pushes.expect(
                "aiDone", to={"admin"}, where=lambda p: p["requestId"] == asked.json()["request_id"]
            )
            # The organization's own server answered, with its key and model; the installation's
            # heard nothing of it.
            assert own.chats()[-1]["model"] == "own-chat"
            assert own.keys[-1] == "Bearer sk-org-own-1234567890"
            assert not any("parcel" in str(request) for request in installation.requests)

            # A neighbour still uses the installation's server.
            theirs = await a_conversation(hub, neighbour, box, "Open on Friday?", sender="+966500000688")
            async with hub.client(neighbour.admin.token) as client:
                assert (await client.get("/api/settings/ai")).json()["source"] == "installation"
                asked = await client.post(f"/api/inbox/conversations/{theirs}/ai/suggest-reply")
                assert asked.status_code == 202
            await eventually(lambda: any("Friday" in str(request) for request in installation.chats()))
            assert not any("Friday" in str(request) for request in own.requests)

            # Keeping the key while changing the model; then back to the installation's server.
            async with hub.client(admin) as client:
                kept = await client.put("/api/settings/ai", json={"base_url": own.url, "model": "own-2"})
                assert kept.json()["has_key"] is True
                back = await client.delete("/api/settings/ai")
                assert back.json()["source"] == "installation"
                assert (await client.delete("/api/settings/ai")).status_code == 404
    finally:
        await pushes.close()
        await runner.cleanup()


async def test_an_organization_with_its_own_server_has_ai_where_the_installation_has_none(
    hub: RunningHub,
) -> None:
    organization = await with_every_role(hub, language="en")
    async with openai_server() as own, hub.client(organization.admin.token) as client:
        assert (await client.get("/api/auth/me")).json()["ai"] is False
        await client.put("/api/settings/ai", json={"base_url": own.url, "model": "own-chat"})
        assert (await client.get("/api/auth/me")).json()["ai"] is True
        signed_in = await client.post(
            "/api/auth/login", json={"email": organization.admin.email, "password": PASSWORD}
        )
        assert signed_in.json()["ai"] is True
        await client.patch("/api/settings/modules", json={"ai": False})
        assert (await client.get("/api/auth/me")).json()["ai"] is False


async def test_the_ai_servers_failures_are_told_to_the_agent_and_hold_nothing_up(
    assisted: tuple[RunningHub, OpenAIServer],
) -> None:
    hub, _server = assisted
    organization = await with_every_role(hub, language="en")
    box = CountingReceiver()
    runner = await serve_receiver(box)
    pushes = await capture_pushes(hub, organization)
    admin = organization.admin.token
    try:
        chat = await a_conversation(hub, organization, box, "Where is my order?")
        async with hub.client(admin, language="en") as client:

            async def improve(draft: str) -> str:
                asked = await client.post(
                    f"/api/inbox/conversations/{chat}/ai/improve", json={"text": draft, "tone": "friendly"}
                )
                assert asked.status_code == 202, asked.text
                return str(asked.json()["request_id"])

            # Rate limited, failing, cut off: each a clear message to the asker only.
            for draft, detail in (
                ("thanks #429", "The AI service is busy. Try again in a moment."),
                ("thanks #500", "The AI service is not answering right now. Try again in a moment."),
                ("a long answer that breaks off half way #cut", "The AI service is not answering right now."),
            ):
                request_id = await improve(draft)
                failed = await pushes.expect(
                    "aiFailed", to={"admin"}, where=lambda p, r=request_id: p["requestId"] == r
                )
                assert failed["detail"].startswith(detail), failed
                assert failed["cancelled"] is False

            # A hung server: the agent's reply goes out meanwhile; the hang ends in its timeout.
            hung = await improve("please #hang")
            reply = await client.post(
                f"/api/inbox/conversations/{chat}/messages", json={"text": "On its way"}
            )
            assert reply.status_code == 201, reply.text
            await eventually(lambda: len(box.messages) == 1)
            failed = await pushes.expect("aiFailed", to={"admin"}, where=lambda p: p["requestId"] == hung)
            assert "took too long" in failed["detail"] or "not answering" in failed["detail"]

            # A slow answer cancelled by its asker: stopped, and nobody else may cancel it.
            slow = await improve("one two three four five six seven eight #slow")
            await pushes.expect("aiChunk", to={"admin"}, where=lambda p: p["requestId"] == slow)
            async with hub.client(organization.members["agent"].token) as other:
                assert (await other.delete(f"/api/ai/requests/{slow}")).status_code == 404
            assert (await client.delete(f"/api/ai/requests/{slow}")).status_code == 204
            stopped = await pushes.expect("aiFailed", to={"admin"}, where=lambda p: p["requestId"] == slow)
            assert stopped["cancelled"] is True

            bad = await client.post(
                f"/api/inbox/conversations/{chat}/ai/improve", json={"text": "x", "tone": "angry"}
            )
            assert bad.status_code == 400
            assert bad.json()["errors"][0]["field"] == "tone"

            # The module switched off: the AI is refused (403); replies are not.
            off = await client.patch("/api/settings/modules", json={"ai": False})
            assert off.status_code == 200, off.text
            refused = await client.post(f"/api/inbox/conversations/{chat}/ai/summarize")
            assert refused.status_code == 403
            assert "AI assistance" in refused.json()["detail"]
            again = await client.post(
                f"/api/inbox/conversations/{chat}/messages", json={"text": "Still here"}
            )
            assert again.status_code == 201
    finally:
        await pushes.close()
        await runner.cleanup()


async def test_without_an_ai_server_the_features_are_absent(
    hub: RunningHub, organization: Organization
) -> None:
    async with hub.client(organization.admin.token, language="en") as client:
        answer = await client.post(f"/api/inbox/conversations/{organization.id}/ai/suggest-reply")
    assert answer.status_code == 404
    assert "not configured" in answer.json()["detail"]


async def test_a_summary_and_a_translation_come_in_the_readers_language(
    assisted: tuple[RunningHub, OpenAIServer],
) -> None:
    hub, server = assisted
    organization = await with_every_role(hub, language="ar")
    box = CountingReceiver()
    runner = await serve_receiver(box)
    pushes = await capture_pushes(hub, organization)
    try:
        chat = await a_conversation(hub, organization, box, "Hello, I need help with my bill")
        async with hub.client(organization.admin.token) as client:
            messages = (await client.get(f"/api/inbox/conversations/{chat}/messages")).json()["items"]
            summary = await client.post(f"/api/inbox/conversations/{chat}/ai/summarize")
            assert summary.status_code == 202, summary.text
            done = await pushes.expect(
                "aiDone", to={"admin"}, where=lambda p: p["requestId"] == summary.json()["request_id"]
            )
            assert done["text"].endswith("[ar]")  # the admin reads Arabic
            assert "Customer: Hello, I need help with my bill" in server.chats()[-1]["messages"][1]["content"]

            translated = await client.post(
                f"/api/inbox/conversations/{chat}/ai/translate",
                json={"message_id": messages[-1]["id"], "to": "en"},
            )
            assert translated.status_code == 202, translated.text
            done = await pushes.expect(
                "aiDone", to={"admin"}, where=lambda p: p["requestId"] == translated.json()["request_id"]
            )
            assert done["text"] == f"{ANSWER_PREFIX} Hello, I need help with my bill [en]"
            missing = await client.post(
                f"/api/inbox/conversations/{chat}/ai/translate", json={"message_id": chat}
            )
            assert missing.status_code == 404
    finally:
        await pushes.close()
        await runner.cleanup()


AI_PLANS = """
currency = "usd"

[plans.tiny]
name = { en = "Tiny", ar = "الصغيرة" }
monthly = 0
yearly = 0
modules = ["whatsapp", "ai"]
[plans.tiny.limits]
ai_credits_per_month = 1

[plans.bigger]
name = { en = "Bigger", ar = "الأكبر" }
monthly = 1000
yearly = 10000
modules = ["whatsapp", "ai"]
"""


async def test_ai_requests_past_the_plans_credits_are_402_and_replies_are_not(tmp_path: Path) -> None:
    from hub.billing.services import read_plans, sync_plans
    from tests.helpers.billing import local_stripe

    plans = tmp_path / "plans.toml"
    plans.write_text(AI_PLANS, encoding="utf-8")
    async with openai_server() as server, local_stripe() as stripe:
        hub = await start_hub(
            make_settings(tmp_path, **ai_settings(server), **stripe.settings()), kind="sqlite"
        )
        box = CountingReceiver()
        runner = await serve_receiver(box)
        try:
            await sync_plans(hub.runtime, read_plans(plans))
            organization = await register(hub, language="en")
            chat = await a_conversation(hub, organization, box, "How much is shipping?")
            async with hub.client(organization.admin.token, language="en") as client:
                first = await client.post(f"/api/inbox/conversations/{chat}/ai/suggest-reply")
                assert first.status_code == 202, first.text  # room for it: none used yet
                await eventually(lambda: len(server.chats()) == 1)

                async def credits_used() -> bool:
                    usage = (await client.get("/api/settings/usage")).json()
                    return bool(usage["metrics"].get("ai_credits"))

                await eventually(credits_used)
                refused = await client.post(f"/api/inbox/conversations/{chat}/ai/suggest-reply")
                assert refused.status_code == 402, refused.text
                body = refused.json()
                assert (body["limit"], body["value"], body["plan"]) == ("ai_credits_per_month", 1, "bigger")
                assert "AI credits a month" in body["detail"]
                assert len(server.chats()) == 1  # nothing left the hub
                # A reply typed by the agent is never refused for AI credits.
                reply = await client.post(
                    f"/api/inbox/conversations/{chat}/messages", json={"text": "Free over 100"}
                )
                assert reply.status_code == 201, reply.text
        finally:
            await runner.cleanup()
            await hub.stop()


async def test_answers_being_written_end_when_the_hub_stops(tmp_path: Path) -> None:
    from hub import ai

    async with openai_server() as server:
        # A timeout far away: only the stop itself can end the hung answer.
        environ = {**ai_settings(server), "HUB_AI_TIMEOUT_SECONDS": "600"}
        hub = await start_hub(make_settings(tmp_path, **environ), kind="sqlite")
        stopped = False
        try:
            organization = await with_every_role(hub, language="en")
            box = CountingReceiver()
            runner = await serve_receiver(box)
            try:
                chat = await a_conversation(hub, organization, box, "Hello")
                async with hub.client(organization.admin.token) as client:
                    asked = await client.post(
                        f"/api/inbox/conversations/{chat}/ai/improve",
                        json={"text": "hi #hang", "tone": "shorter"},
                    )
                assert asked.status_code == 202, asked.text
                await eventually(lambda: any("#hang" in str(r) for r in server.chats()))
                running = [r for r in ai._running.values() if r.runtime is hub.runtime]
                assert len(running) == 1
                await hub.stop()
                stopped = True
                assert running[0].task.done()
                assert not [r for r in ai._running.values() if r.runtime is hub.runtime]
            finally:
                await runner.cleanup()
        finally:
            if not stopped:
                await hub.stop()
