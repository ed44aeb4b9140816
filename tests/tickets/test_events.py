"""The tickets' socket events, each by its contract: the action that sends it, exactly who receives
it (the roles that read every ticket and its assignee; never another agent or organization), and
its payload applied to what the console had fetched, which must equal a fresh fetch. Messages that
ask for help suggest tickets, or open them when the organization says so."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx

from hub.db import utcnow
from tests.conftest import Organization, RunningHub
from tests.helpers.channels import Receiver, make_channel
from tests.helpers.pushes import CapturedPushes
from tests.helpers.tickets import fast_forward

READERS = {"admin", "manager", "member"}  # every ticket, whoever holds it


async def ticket_of(client: httpx.AsyncClient, ticket_id: str) -> dict[str, Any]:
    answer = await client.get(f"/api/tickets/{ticket_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


async def comments_of(client: httpx.AsyncClient, ticket_id: str) -> list[dict[str, Any]]:
    return (await client.get(f"/api/tickets/{ticket_id}/comments", params={"limit": 100})).json()["items"]  # type: ignore[no-any-return]


async def ticket_for_agent(hub: RunningHub, organization: Organization, **fields: Any) -> dict[str, Any]:
    async with hub.client(organization.members["manager"].token) as manager:
        created = await manager.post(
            "/api/tickets",
            json={"title": "Broken", "assignee_id": str(organization.members["agent"].user_id), **fields},
        )
    assert created.status_code == 201, created.text
    return created.json()  # type: ignore[no-any-return]


async def test_ticket_created(
    hub: RunningHub, organization: Organization, captured_pushes: CapturedPushes
) -> None:
    ticket = await ticket_for_agent(hub, organization)
    data = await captured_pushes.expect("ticketCreated", to=READERS | {"agent"})
    async with hub.client(organization.members["agent"].token) as agent:
        assert data["ticket"] == await ticket_of(agent, ticket["id"])


async def test_ticket_updated(
    hub: RunningHub, organization: Organization, captured_pushes: CapturedPushes
) -> None:
    ticket = await ticket_for_agent(hub, organization)
    async with hub.client(organization.members["agent"].token) as agent:
        captured_pushes.forget()
        changed = await agent.patch(f"/api/tickets/{ticket['id']}", json={"status": "waiting_on_customer"})
        assert changed.status_code == 200, changed.text
        data = await captured_pushes.expect("ticketUpdated", to=READERS | {"agent"})
        assert data["ticket"]["status"] == "waiting_on_customer"
        assert data["ticket"] == await ticket_of(agent, ticket["id"])


async def test_ticket_assigned(
    hub: RunningHub, organization: Organization, captured_pushes: CapturedPushes
) -> None:
    agent_a, agent_b = organization.members["agent"], captured_pushes.people["agent_b"]
    ticket = await ticket_for_agent(hub, organization)
    data = await captured_pushes.expect("ticketAssigned", to=READERS | {"agent"})
    assert data == {"ticketId": ticket["id"], "agentId": str(agent_a.user_id), "previousAgentId": None}

    async with hub.client(organization.members["manager"].token) as manager:
        before = await ticket_of(manager, ticket["id"])
        captured_pushes.forget()
        await manager.post(f"/api/tickets/{ticket['id']}/assign", json={"assignee_id": str(agent_b.user_id)})
        # The old and the new assignee both hear of it; only the new one sees the ticket from now on.
        data = await captured_pushes.expect("ticketAssigned", to=READERS | {"agent", "agent_b"})
        assert data == {
            "ticketId": ticket["id"],
            "agentId": str(agent_b.user_id),
            "previousAgentId": str(agent_a.user_id),
        }
        await captured_pushes.expect("ticketUpdated", to=READERS | {"agent_b"})
        after = await ticket_of(manager, ticket["id"])
        assert {**before, "assignee_id": data["agentId"], "updated_at": after["updated_at"]} == after
    async with hub.client(agent_a.token) as agent:
        assert (await agent.get(f"/api/tickets/{ticket['id']}")).status_code == 404


async def test_comment_added_and_mentioned(
    hub: RunningHub, organization: Organization, captured_pushes: CapturedPushes
) -> None:
    agent_a, agent_b = organization.members["agent"], captured_pushes.people["agent_b"]
    ticket = await ticket_for_agent(hub, organization, assignee_id=str(agent_b.user_id))
    async with hub.client(agent_b.token) as agent:
        comments = await comments_of(agent, ticket["id"])
        captured_pushes.forget()
        written = await agent.post(
            f"/api/tickets/{ticket['id']}/comments",
            json={
                "text": "@Member @AgentA have a look",
                "mentions": [str(organization.members["member"].user_id), str(agent_a.user_id)],
            },
        )
        assert written.status_code == 201, written.text
        data = await captured_pushes.expect("commentAdded", to=READERS | {"agent_b"})
        assert data["ticketId"] == ticket["id"]
        assert [*comments, data["comment"]] == await comments_of(agent, ticket["id"])
        # Mentioned and allowed to see the ticket: told. Mentioned, but not allowed (agent A): not told.
        mention = await captured_pushes.expect("mentioned", to={"member"})
        assert mention == {
            "ticketId": ticket["id"],
            "number": ticket["number"],
            "comment": data["comment"],
            "by": str(agent_b.user_id),
        }


async def test_sla_warning_and_breach(
    hub: RunningHub, organization: Organization, captured_pushes: CapturedPushes
) -> None:
    async with hub.client(organization.admin.token) as admin:
        await admin.put(
            "/api/tickets/sla-policies/urgent",
            json={"first_response_minutes": 60, "resolution_minutes": 600, "business_hours_only": False},
        )
    ticket = await ticket_for_agent(hub, organization, priority="urgent")
    soon = utcnow()
    await fast_forward(
        hub,
        organization.id,
        ticket["id"],
        # Far enough apart that the warning's check runs before the target is due even on a busy
        # machine (a check that finds it overdue breaches at once, without a warning).
        first_response_warn_at=soon + timedelta(seconds=1),
        first_response_due_at=soon + timedelta(seconds=8),
    )
    warning = await captured_pushes.expect("slaWarning", to=READERS | {"agent"}, within=30)
    breach = await captured_pushes.expect("slaBreached", to=READERS | {"agent"}, within=30)
    async with hub.client(organization.members["agent"].token) as agent:
        shown = (await ticket_of(agent, ticket["id"]))["first_response"]
    for data in (warning, breach):
        assert data == {
            "ticketId": ticket["id"],
            "number": ticket["number"],
            "target": "first_response",
            "dueAt": shown["due_at"],
        }
    # What the console marks on the ticket is what it reads afresh: warned, then breached.
    assert shown["warned_at"] is not None
    assert shown["breached_at"] is not None


async def test_ticket_suggested(
    hub: RunningHub, organization: Organization, receiver: Receiver, captured_pushes: CapturedPushes
) -> None:
    agent_a = organization.members["agent"]
    channel = await make_channel(hub, organization, receiver)
    captured_pushes.forget()
    stored = (
        await channel.send(
            external_id="s-1", **{"from": "+966563330001"}, text="Hello, I have a PROBLEM with my order"
        )
    ).json()
    # Nobody holds the chat: who assigns tickets (managers and admins) gets the suggestion.
    suggestion = await captured_pushes.expect("ticketSuggested", to={"admin", "manager"})
    assert suggestion["chatId"] == stored["conversation_id"]
    assert suggestion["messageId"] == stored["message_id"]
    assert suggestion["keyword"] == "problem"
    assert suggestion["draft"]["title"] == "Hello, I have a PROBLEM with my order"
    assert suggestion["draft"]["conversation_id"] == stored["conversation_id"]
    async with hub.client(organization.members["manager"].token) as manager:
        # Accepting it is posting the draft as it came: the ticket opens on the chat.
        opened = await manager.post("/api/tickets", json=suggestion["draft"])
        assert opened.status_code == 201, opened.text
        assert opened.json()["context"][-1]["text"] == "Hello, I have a PROBLEM with my order"

    async with hub.client(organization.admin.token) as client:
        await client.post(
            f"/api/inbox/conversations/{stored['conversation_id']}/assign",
            json={"assignee_id": str(agent_a.user_id)},
        )
        captured_pushes.forget()
        # Arabic, with a prefix and a vowel mark: whoever holds the chat alone gets it.
        await channel.send(external_id="s-2", **{"from": "+966563330001"}, text="والمُشكلة أن الجهاز لا يعمل")
        await captured_pushes.expect("ticketSuggested", to={"agent"})
        await channel.send(external_id="s-3", **{"from": "+966563330001"}, text="Thanks, all good")
        await captured_pushes.expect(
            "newMessage", to=READERS | {"agent"}, where=lambda d: "Thanks" in d["message"]["text"]
        )
        assert (
            len(captured_pushes.sockets["agent"].named("ticketSuggested")) == 1
        )  # no keyword, no suggestion
        assert len((await client.get("/api/tickets")).json()["items"]) == 1  # suggesting creates nothing

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
        created = await captured_pushes.expect(
            "ticketCreated", to=READERS | {"agent"}, where=lambda d: d["ticket"]["kind"] == "sales"
        )
        await asyncio.sleep(0.5)
        tickets = [t for t in (await client.get("/api/tickets")).json()["items"] if t["kind"] == "sales"]
        assert tickets == [created["ticket"]]
        assert (tickets[0]["kind"], tickets[0]["priority"]) == ("sales", "high")
        assert tickets[0]["assignee_id"] == str(agent_a.user_id)  # whoever handles the chat
        assert tickets[0]["created_by"] is None
        assert tickets[0]["context"][-1]["text"] == "I want a refund"
