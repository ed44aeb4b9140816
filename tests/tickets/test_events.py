"""Ticket events over real sockets: each reaches the users allowed to see the ticket and nobody
else; messages that ask for help suggest a ticket, or open one when the organization says so."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import Organization, RunningHub, add_member, eventually, register
from tests.helpers.channels import Receiver, make_channel
from tests.helpers.sockets import SocketEvents, connect


async def sockets(hub: RunningHub, organization: Organization) -> tuple[dict[str, SocketEvents], Any]:
    agent_a = organization.members["agent"]
    agent_b = await add_member(hub, organization, "agent")
    organization.members["agent"] = agent_a
    stranger = await register(hub)
    people = {
        "admin": organization.admin.token,
        "manager": organization.members["manager"].token,
        "member": organization.members["member"].token,
        "agent_a": agent_a.token,
        "agent_b": agent_b.token,
        "stranger": stranger.admin.token,
    }
    return {name: await connect(hub, token) for name, token in people.items()}, agent_b


def receivers(inboxes: dict[str, SocketEvents], event: str) -> set[str]:
    return {name for name, inbox in inboxes.items() if inbox.named(event)}


async def test_ticket_events_reach_exactly_the_right_sockets(
    hub: RunningHub, organization: Organization
) -> None:
    inboxes, agent_b = await sockets(hub, organization)
    agent_a = organization.members["agent"]
    everyone_reading = {"admin", "manager", "member"}
    async with hub.client(organization.members["manager"].token) as client:
        ticket = (
            await client.post("/api/tickets", json={"title": "Broken", "assignee_id": str(agent_a.user_id)})
        ).json()
        await eventually(lambda: receivers(inboxes, "ticketAssigned") == everyone_reading | {"agent_a"})
        assert receivers(inboxes, "ticketCreated") == everyone_reading | {"agent_a"}
        assert inboxes["agent_a"].named("ticketAssigned")[0]["agentId"] == str(agent_a.user_id)
        assert inboxes["agent_a"].named("ticketCreated")[0]["ticket"]["id"] == ticket["id"]

        for inbox in inboxes.values():
            inbox.received.clear()
        await client.post(f"/api/tickets/{ticket['id']}/assign", json={"assignee_id": str(agent_b.user_id)})
        # The old and the new assignee both hear of the reassignment; only the new one sees the ticket now.
        await eventually(
            lambda: receivers(inboxes, "ticketAssigned") == everyone_reading | {"agent_a", "agent_b"}
        )
        assert inboxes["agent_a"].named("ticketAssigned")[0] == {
            "ticketId": ticket["id"],
            "agentId": str(agent_b.user_id),
            "previousAgentId": str(agent_a.user_id),
        }
        await eventually(lambda: receivers(inboxes, "ticketUpdated") == everyone_reading | {"agent_b"})

    for inbox in inboxes.values():
        inbox.received.clear()
    async with hub.client(agent_b.token) as client:
        comment = await client.post(
            f"/api/tickets/{ticket['id']}/comments",
            json={
                "text": "@Member @AgentA have a look",
                "mentions": [str(organization.members["member"].user_id), str(agent_a.user_id)],
            },
        )
        assert comment.status_code == 201
    await eventually(lambda: receivers(inboxes, "commentAdded") == everyone_reading | {"agent_b"})
    assert inboxes["member"].named("commentAdded")[0]["comment"]["text"] == "@Member @AgentA have a look"
    # Mentioned, and allowed to see it: told. Mentioned, but not allowed: not told.
    await eventually(lambda: receivers(inboxes, "mentioned") == {"member"})
    await asyncio.sleep(0.3)
    assert receivers(inboxes, "mentioned") == {"member"}
    assert not inboxes["stranger"].received
    for inbox in inboxes.values():
        await inbox.client.disconnect()


async def test_help_messages_suggest_tickets_and_open_them_when_told(
    hub: RunningHub, organization: Organization, receiver: Receiver
) -> None:
    inboxes, _agent_b = await sockets(hub, organization)
    agent_a = organization.members["agent"]
    channel = await make_channel(hub, organization, receiver)
    stored = (
        await channel.send(
            external_id="s-1", **{"from": "+966563330001"}, text="Hello, I have a PROBLEM with my order"
        )
    ).json()
    # Nobody handles the chat: managers and admins get the suggestion.
    await eventually(lambda: receivers(inboxes, "ticketSuggested") == {"admin", "manager"})
    suggestion = inboxes["manager"].named("ticketSuggested")[0]
    assert suggestion["chatId"] == stored["conversation_id"]
    assert suggestion["keyword"] == "problem"
    assert suggestion["draft"]["title"] == "Hello, I have a PROBLEM with my order"
    assert suggestion["draft"]["conversation_id"] == stored["conversation_id"]

    async with hub.client(organization.admin.token) as client:
        await client.post(
            f"/api/inbox/conversations/{stored['conversation_id']}/assign",
            json={"assignee_id": str(agent_a.user_id)},
        )
        for inbox in inboxes.values():
            inbox.received.clear()
        # Arabic, with a prefix and a vowel mark: the assignee alone gets it.
        await channel.send(external_id="s-2", **{"from": "+966563330001"}, text="والمُشكلة أن الجهاز لا يعمل")
        await eventually(lambda: receivers(inboxes, "ticketSuggested") == {"agent_a"})
        await channel.send(external_id="s-3", **{"from": "+966563330001"}, text="Thanks, all good")
        await asyncio.sleep(0.5)
        assert len(inboxes["agent_a"].named("ticketSuggested")) == 1  # no keyword, no suggestion
        assert (await client.get("/api/tickets")).json()["items"] == []  # suggesting creates nothing

        changed = await client.patch(
            "/api/tickets/settings",
            json={
                "create_automatically": True,
                "suggestion_rules": [
                    {"keywords": ["refund", "استرجاع"], "kind": "sales", "priority": "high"}
                ],
            },
        )
        assert changed.status_code == 200
        for _ in range(2):  # the same delivery twice is one message, so one ticket
            await channel.send(external_id="s-4", **{"from": "+966563330001"}, text="I want a refund")
        tickets = await eventually(lambda: _tickets(client))
        await asyncio.sleep(0.5)
        tickets = await _tickets(client)
        assert len(tickets) == 1
        assert (tickets[0]["kind"], tickets[0]["priority"]) == ("sales", "high")
        assert tickets[0]["assignee_id"] == str(agent_a.user_id)  # whoever handles the chat
        assert tickets[0]["created_by"] is None
        assert tickets[0]["context"][-1]["text"] == "I want a refund"
    await eventually(lambda: "agent_a" in receivers(inboxes, "ticketCreated"))
    for inbox in inboxes.values():
        await inbox.client.disconnect()


async def _tickets(client: Any) -> list[dict[str, Any]]:
    return (await client.get("/api/tickets")).json()["items"]  # type: ignore[no-any-return]
