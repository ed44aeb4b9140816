"""The inbox's socket events, each by its contract: the action that sends it, exactly who receives
it (the roles that read every chat and the conversation's assignee, never another agent or
organization), and its payload applied to what the console had fetched, which must equal a fresh
fetch. The reducers below do what the console's inbox and conversation pages do."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Organization, RunningHub
from tests.helpers.channels import ApiChannel, Receiver, make_channel
from tests.helpers.pushes import CapturedPushes

READERS = {"admin", "manager", "member"}  # every chat, whoever holds it


async def messages_of(client: httpx.AsyncClient, chat_id: str) -> list[dict[str, Any]]:
    """Oldest first, as the conversation page shows them."""
    page = (await client.get(f"/api/inbox/conversations/{chat_id}/messages", params={"limit": 100})).json()
    return list(reversed(page["items"]))


async def conversations_of(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    page = (await client.get("/api/inbox/conversations", params={"limit": 100})).json()
    return {item["id"]: item for item in page["items"]}


def apply_to_messages(
    messages: list[dict[str, Any]], event: str, data: dict[str, Any]
) -> list[dict[str, Any]]:
    if event == "messageDeleted":
        return [
            {**m, "deleted_at": "(set)", "text": None, "attachments": []}
            if m["id"] == data["messageId"]
            else m
            for m in messages
        ]
    if any(m["id"] == data["message"]["id"] for m in messages):
        return [data["message"] if m["id"] == data["message"]["id"] else m for m in messages]
    return messages if event == "messageUpdated" else [*messages, data["message"]]


def apply_to_conversations(
    conversations: dict[str, dict[str, Any]], event: str, data: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    rest = {key: value for key, value in conversations.items() if key != data["chatId"]}
    if event == "conversationUnassigned":
        return rest
    return {**rest, data["chatId"]: data["conversation"]}


async def chat_held_by_agent(
    hub: RunningHub, organization: Organization, receiver: Receiver
) -> tuple[ApiChannel, str]:
    """A customer's conversation, assigned to the organization's agent."""
    channel = await make_channel(hub, organization, receiver)
    stored = (await channel.send(external_id="c-1", **{"from": "+966561110001"}, text="Hello")).json()
    async with hub.client(organization.admin.token) as client:
        assigned = await client.post(
            f"/api/inbox/conversations/{stored['conversation_id']}/assign",
            json={"assignee_id": str(organization.members["agent"].user_id)},
        )
    assert assigned.status_code == 200, assigned.text
    return channel, stored["conversation_id"]


async def delivered_reply(
    agent: httpx.AsyncClient, chat_id: str, text: str, pushes: CapturedPushes
) -> dict[str, Any]:
    """The agent's reply, once the channel has taken it (its `messageUpdated` to "sent")."""
    written = await agent.post(f"/api/inbox/conversations/{chat_id}/messages", json={"text": text})
    assert written.status_code == 201, written.text
    reply: dict[str, Any] = written.json()
    await pushes.expect(
        "messageUpdated",
        to=READERS | {"agent"},
        where=lambda d: d["message"]["id"] == reply["id"] and d["message"]["status"] == "sent",
    )
    return reply


async def test_new_message(
    hub: RunningHub, organization: Organization, receiver: Receiver, captured_pushes: CapturedPushes
) -> None:
    channel, chat_id = await chat_held_by_agent(hub, organization, receiver)
    async with hub.client(organization.members["agent"].token) as agent:
        messages, conversations = await messages_of(agent, chat_id), await conversations_of(agent)
        captured_pushes.forget()
        await channel.send(external_id="c-2", **{"from": "+966561110001"}, text="Where is my order?")
        data = await captured_pushes.expect("newMessage", to=READERS | {"agent"})
        assert data["chatId"] == chat_id
        assert data["message"]["text"] == "Where is my order?"
        assert apply_to_messages(messages, "newMessage", data) == await messages_of(agent, chat_id)
        conversations = apply_to_conversations(conversations, "newMessage", data)
        assert conversations == await conversations_of(agent)


async def test_message_sent(
    hub: RunningHub, organization: Organization, receiver: Receiver, captured_pushes: CapturedPushes
) -> None:
    _channel, chat_id = await chat_held_by_agent(hub, organization, receiver)
    async with hub.client(organization.members["agent"].token) as agent:
        messages = await messages_of(agent, chat_id)
        captured_pushes.forget()
        written = await agent.post(
            f"/api/inbox/conversations/{chat_id}/messages", json={"text": "On its way"}
        )
        assert written.status_code == 201, written.text
        data = await captured_pushes.expect(
            "messageSent", to=READERS | {"agent"}, where=lambda d: d["message"]["id"] == written.json()["id"]
        )
        assert data["message"]["text"] == "On its way"
        assert data["message"]["direction"] == "outbound"
        # What the console showed then: the reply as queued, before the channel took it.
        assert apply_to_messages(messages, "messageSent", data)[-1]["id"] == written.json()["id"]
        # Its delivery to the channel is told as messageUpdated; the two together are the fresh state.
        update = await captured_pushes.expect(
            "messageUpdated",
            to=READERS | {"agent"},
            where=lambda d: d["message"]["id"] == written.json()["id"] and d["message"]["status"] == "sent",
        )
        shown = apply_to_messages(apply_to_messages(messages, "messageSent", data), "messageUpdated", update)
        assert shown == await messages_of(agent, chat_id)


async def test_message_updated(
    hub: RunningHub, organization: Organization, receiver: Receiver, captured_pushes: CapturedPushes
) -> None:
    _channel, chat_id = await chat_held_by_agent(hub, organization, receiver)
    async with hub.client(organization.members["agent"].token) as agent:
        written = await delivered_reply(agent, chat_id, "Yuor order", captured_pushes)
        messages = await messages_of(agent, chat_id)
        captured_pushes.forget()
        edited = await agent.put(
            f"/api/inbox/conversations/{chat_id}/messages/{written['id']}", json={"text": "Your order"}
        )
        assert edited.status_code == 200, edited.text
        data = await captured_pushes.expect(
            "messageUpdated", to=READERS | {"agent"}, where=lambda d: d["message"]["text"] == "Your order"
        )
        assert data["message"]["edited_at"] is not None
        assert apply_to_messages(messages, "messageUpdated", data) == await messages_of(agent, chat_id)


async def test_message_deleted(
    hub: RunningHub, organization: Organization, receiver: Receiver, captured_pushes: CapturedPushes
) -> None:
    _channel, chat_id = await chat_held_by_agent(hub, organization, receiver)
    async with hub.client(organization.members["agent"].token) as agent:
        written = await delivered_reply(agent, chat_id, "Wrong chat", captured_pushes)
        messages = await messages_of(agent, chat_id)
        captured_pushes.forget()
        deleted = await agent.delete(f"/api/inbox/conversations/{chat_id}/messages/{written['id']}")
        assert deleted.status_code == 200, deleted.text
        data = await captured_pushes.expect("messageDeleted", to=READERS | {"agent"})
        assert data == {"chatId": chat_id, "messageId": written["id"]}
        fresh = await messages_of(agent, chat_id)
        assert next(m for m in fresh if m["id"] == written["id"])["deleted_at"] is not None
        fresh = [{**m, "deleted_at": "(set)"} if m["id"] == written["id"] else m for m in fresh]
        assert apply_to_messages(messages, "messageDeleted", data) == fresh


async def test_conversation_updated(
    hub: RunningHub, organization: Organization, receiver: Receiver, captured_pushes: CapturedPushes
) -> None:
    _channel, chat_id = await chat_held_by_agent(hub, organization, receiver)
    async with hub.client(organization.members["manager"].token) as manager:
        conversations = await conversations_of(manager)
        captured_pushes.forget()
        changed = await manager.patch(f"/api/inbox/conversations/{chat_id}", json={"status": "pending"})
        assert changed.status_code == 200, changed.text
        data = await captured_pushes.expect("conversationUpdated", to=READERS | {"agent"})
        assert data["conversation"]["status"] == "pending"
        conversations = apply_to_conversations(conversations, "conversationUpdated", data)
        assert conversations == await conversations_of(manager)


async def test_conversation_unassigned(
    hub: RunningHub, organization: Organization, receiver: Receiver, captured_pushes: CapturedPushes
) -> None:
    _channel, chat_id = await chat_held_by_agent(hub, organization, receiver)
    agent_b = captured_pushes.people["agent_b"]
    async with (
        hub.client(organization.members["agent"].token) as agent,
        hub.client(organization.members["manager"].token) as manager,
    ):
        agents_list = await conversations_of(agent)
        assert chat_id in agents_list
        captured_pushes.forget()
        moved = await manager.post(
            f"/api/inbox/conversations/{chat_id}/assign", json={"assignee_id": str(agent_b.user_id)}
        )
        assert moved.status_code == 200, moved.text
        # The agent who held it is told once, and nobody else; the new holder reads it as updated.
        data = await captured_pushes.expect("conversationUnassigned", to={"agent"})
        assert data == {"chatId": chat_id}
        await captured_pushes.expect("conversationUpdated", to=READERS | {"agent_b"})
        assert apply_to_conversations(agents_list, "conversationUnassigned", data) == await conversations_of(
            agent
        )
