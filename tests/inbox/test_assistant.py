"""The assistant that answers customers, against the local OpenAI-protocol server: it answers
from the knowledge base alone on the channels and in the hours chosen, marks its messages, and
hands the conversation to the team (with a private note, a word to the customer, and a turn) when
it is unsure, when the customer asks for a person, after its turns, or when the AI server fails;
it stays out of opt-outs and of conversations a person of the team writes in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import Organization, RunningHub, eventually, with_every_role
from tests.helpers.campaigns import CountingReceiver, api_channel, poster, serve_receiver
from tests.helpers.openai_server import OpenAIServer
from tests.helpers.sockets import connect

HANDED = "سيرد عليك أحد أعضاء فريقنا قريبًا."


@pytest.fixture
async def box(assisted: tuple[RunningHub, OpenAIServer]) -> AsyncIterator[CountingReceiver]:
    """The customers' side of the shop's channel; the AI server's fixed answer cleared after."""
    receiver = CountingReceiver()
    runner = await serve_receiver(receiver)
    try:
        yield receiver
    finally:
        assisted[1].answer = None
        await runner.cleanup()


class Shop:
    """An organization with an API channel whose customers' side is `box`, a knowledge base
    article on delivery, one agent online, and the assistant on for the channel."""

    def __init__(
        self, hub: RunningHub, organization: Organization, box: CountingReceiver, channel: Any
    ) -> None:
        self.hub, self.organization, self.box, self.channel = hub, organization, box, channel
        self.sent = 0

    async def write(self, sender: str, text: str) -> str:
        self.sent += 1
        answer = await poster(self.channel).send(external_id=f"w-{self.sent}", **{"from": sender}, text=text)
        assert answer.status_code == 202, answer.text
        return str(answer.json()["conversation_id"])

    def heard(self, sender: str) -> list[str]:
        return [message["text"] for message in self.box.to(sender)]

    async def messages(self, conversation: str) -> list[dict[str, Any]]:
        async with self.hub.client(self.organization.admin.token) as client:
            return list(
                (await client.get(f"/api/inbox/conversations/{conversation}/messages")).json()["items"]
            )

    async def conversation(self, conversation: str) -> dict[str, Any]:
        async with self.hub.client(self.organization.admin.token) as client:
            return dict((await client.get(f"/api/inbox/conversations/{conversation}")).json())


async def open_shop(hub: RunningHub, box: CountingReceiver, **assistant: Any) -> Shop:
    organization = await with_every_role(hub, language="ar")
    channel = await api_channel(hub, organization, box)
    async with hub.client(organization.admin.token) as client:
        article = {"title": "مدة التوصيل", "body": "يصل الطلب إلى جدة خلال يومين.", "tags": ["شحن"]}
        assert (await client.post("/api/inbox/knowledge", json=article)).status_code == 201
        await client.patch("/api/inbox/settings", json={"auto_assign": True, "agent_cap": 50})
        saved = await client.put(
            "/api/inbox/assistant",
            json={"enabled": True, "channel_ids": [channel["id"]], "handoff_after_turns": 2, **assistant},
        )
        assert saved.status_code == 200, saved.text
    return Shop(hub, organization, box, channel)


async def test_the_assistant_answers_from_the_knowledge_base_and_hands_off_when_unsure(
    assisted: tuple[RunningHub, OpenAIServer], box: CountingReceiver
) -> None:
    hub, server = assisted
    shop = await open_shop(hub, box)
    agent = shop.organization.members["agent"]
    screen = await connect(hub, agent.token)

    # A question the knowledge base answers: answered, marked as the assistant's, and the
    # conversation waits for the assistant rather than going to the agent in turn.
    server.answer = "يصل طلبك إلى جدة خلال يومين [1]."
    chat = await shop.write("+966511000001", "كم يستغرق التوصيل إلى جدة؟")
    await eventually(lambda: shop.heard("+966511000001"))
    assert shop.heard("+966511000001") == ["يصل طلبك إلى جدة خلال يومين."]
    mine = [m for m in await shop.messages(chat) if m["direction"] == "outbound"]
    assert [m["by_assistant"] for m in mine] == [True]
    assert (await shop.conversation(chat))["assignee_id"] is None
    prompt = server.chats()[-1]["messages"][0]["content"]
    assert "يصل الطلب إلى جدة خلال يومين." in prompt
    assert "[language:ar]" in prompt

    # A question the knowledge base does not answer: the model says so (it is told to answer
    # [HANDOFF] then), and the conversation goes to the team with a note saying why.
    server.answer = "[HANDOFF]"
    await shop.write("+966511000001", "هل تقبلون الدفع بالعملات الرقمية؟")
    await eventually(lambda: len(shop.heard("+966511000001")) == 2)
    assert shop.heard("+966511000001")[-1] == HANDED
    conversation = await shop.conversation(chat)
    assert conversation["assignee_id"] == str(agent.user_id)  # in turn, to the agent online
    note = [m for m in await shop.messages(chat) if m["private"]]
    assert len(note) == 1
    assert note[0]["by_assistant"] is True
    assert "لا تجيب قاعدة المعرفة" in note[0]["text"]
    assert "هل تقبلون الدفع بالعملات الرقمية؟" in note[0]["text"]

    # With nothing in the knowledge base near the question, the AI server is not even asked.
    async with hub.client(shop.organization.admin.token) as client:
        for item in (await client.get("/api/inbox/knowledge")).json()["items"]:
            await client.delete(f"/api/inbox/knowledge/{item['id']}")
    asked_before = len(server.chats())
    other = await shop.write("+966511000002", "ما مدة التوصيل إلى الدمام؟")
    await eventually(lambda: shop.heard("+966511000002") == [HANDED])
    assert len(server.chats()) == asked_before
    assert (await shop.conversation(other))["assignee_id"] == str(agent.user_id)
    async with hub.client(shop.organization.admin.token) as client:
        restored = {"title": "مدة التوصيل", "body": "يصل الطلب إلى جدة خلال يومين."}
        assert (await client.post("/api/inbox/knowledge", json=restored)).status_code == 201

    # Handed off: the assistant says nothing more in that conversation.
    server.answer = "يصل طلبك خلال يومين [1]."
    await shop.write("+966511000001", "كم يستغرق التوصيل إلى جدة؟")
    await shop.write("+966511000003", "كم يستغرق التوصيل إلى جدة؟")  # a barrier
    await eventually(lambda: shop.heard("+966511000003"))
    assert len(shop.heard("+966511000001")) == 2

    async with hub.client(shop.organization.admin.token) as client:
        report = (await client.get("/api/inbox/assistant/report")).json()
    assert report["answered"] == 2
    assert report["handed_off"] == 2
    assert report["messages"] == 4  # two answers and two words of a hand-off
    await screen.client.disconnect()


async def test_a_customer_asking_for_a_person_or_past_the_turns_goes_to_the_team(
    assisted: tuple[RunningHub, OpenAIServer], box: CountingReceiver
) -> None:
    hub, server = assisted
    shop = await open_shop(hub, box, handoff_to="unassigned")
    server.answer = "يصل طلبك خلال يومين [1]."
    chats_before = len(server.chats())
    person = await shop.write("+966512000001", "أريد التحدث مع موظف من فضلك")
    await eventually(lambda: shop.heard("+966512000001") == [HANDED])
    assert len(server.chats()) == chats_before  # no AI needed to hear that
    assert (await shop.conversation(person))["assignee_id"] is None  # left unassigned
    note = [m for m in await shop.messages(person) if m["private"]]
    assert "طلب العميل التحدث مع شخص" in note[0]["text"]

    await shop.write("+966512000002", "Can I talk to a human?")
    await eventually(lambda: shop.heard("+966512000002") == [HANDED])

    # Two answers at most in one conversation (`handoff_after_turns`), then the team.
    for n in range(3):
        await shop.write("+966512000003", f"كم يستغرق التوصيل؟ {n}")
        await eventually(lambda n=n: len(shop.heard("+966512000003")) == n + 1)
    assert shop.heard("+966512000003") == ["يصل طلبك خلال يومين.", "يصل طلبك خلال يومين.", HANDED]


async def test_the_assistant_stays_out_of_what_is_not_its_own(
    assisted: tuple[RunningHub, OpenAIServer], box: CountingReceiver
) -> None:
    hub, server = assisted
    shop = await open_shop(hub, box)
    server.answer = "يصل طلبك خلال يومين [1]."
    chat = await shop.write("+966513000001", "كم يستغرق التوصيل؟")
    await eventually(lambda: shop.heard("+966513000001"))

    # A person of the team writes: the assistant leaves the conversation to them.
    async with hub.client(shop.organization.admin.token) as client:
        written = await client.post(
            f"/api/inbox/conversations/{chat}/messages", json={"text": "أنا معك، سأتحقق من طلبك."}
        )
        assert written.status_code == 201, written.text
    await eventually(lambda: len(shop.heard("+966513000001")) == 2)
    await shop.write("+966513000001", "كم يستغرق التوصيل إلى جدة؟")
    # An opt-out keyword gets its confirmation and nothing from the assistant.
    await shop.write("+966513000002", "STOP")
    await eventually(lambda: shop.heard("+966513000002"))
    # A barrier: a new customer's answer comes after the work on the messages above.
    await shop.write("+966513000003", "كم يستغرق التوصيل؟")
    await eventually(lambda: shop.heard("+966513000003"))
    assert len(shop.heard("+966513000001")) == 2
    assert len(shop.heard("+966513000002")) == 1
    assert "STOP" not in str(server.chats()[-1])

    # An AI server failing: handed to the team, never left unanswered.
    server.answer = None
    await shop.write("+966513000004", "كم يستغرق التوصيل؟ #500")
    await eventually(lambda: shop.heard("+966513000004") == [HANDED])

    # Outside its hours the assistant is quiet and conversations go in turn as usual.
    agent = shop.organization.members["agent"]
    screen = await connect(hub, agent.token)
    async with hub.client(shop.organization.admin.token) as client:
        settings = (await client.get("/api/inbox/assistant")).json()
        never = [{"day": day, "start": "00:00", "end": "00:01"} for day in range(7)]
        changed = await client.put("/api/inbox/assistant", json={**settings, "hours": never})
        assert changed.status_code == 200, changed.text
        bad = await client.put(
            "/api/inbox/assistant",
            json={**settings, "hours": [{"day": 7, "start": "09:00", "end": "10:00"}]},
        )
        assert bad.status_code == 400
        wrong = await client.put(
            "/api/inbox/assistant", json={**settings, "channel_ids": [str(shop.organization.id)]}
        )
        assert wrong.status_code == 400
        assert wrong.json()["errors"][0]["field"] == "channel_ids"
    quiet = await shop.write("+966513000005", "كم يستغرق التوصيل؟")
    assert (await shop.conversation(quiet))["assignee_id"] == str(agent.user_id)
    await screen.client.disconnect()
