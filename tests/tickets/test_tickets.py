"""Tickets through the API: the workflow, roles, comments and replies, the timeline, filters."""

from __future__ import annotations

import base64
from typing import Any

from tests.conftest import Organization, RunningHub, eventually, register
from tests.helpers.channels import Receiver, make_channel


async def test_a_ticket_from_a_chat_carries_its_messages_and_replies_reach_the_customer(
    hub: RunningHub, organization: Organization, receiver: Receiver
) -> None:
    channel = await make_channel(hub, organization, receiver)
    await channel.send(external_id="t-1", **{"from": "+966561110001"}, name="Huda", text="My order is late")
    stored = (
        await channel.send(external_id="t-2", **{"from": "+966561110001"}, text="It was due Monday")
    ).json()
    agent = organization.members["agent"]
    async with hub.client(organization.members["manager"].token, language="en") as client:
        conversation_id = stored["conversation_id"]
        await client.post(
            f"/api/inbox/conversations/{conversation_id}/assign", json={"assignee_id": str(agent.user_id)}
        )
        customer_id = (await client.get(f"/api/inbox/conversations/{conversation_id}")).json()["customer"][
            "id"
        ]
    async with hub.client(agent.token, language="en") as client:
        created = await client.post(
            "/api/tickets",
            json={
                "title": "Late order",
                "conversation_id": conversation_id,
                "priority": "high",
                "tags": ["shipping"],
            },
        )
        assert created.status_code == 201, created.text
        ticket = created.json()
        assert ticket["number"] == 1
        assert ticket["customer_id"] == customer_id  # from the chat
        assert ticket["assignee_id"] == str(agent.user_id)  # an agent's own ticket is theirs
        assert [m["text"] for m in ticket["context"]] == ["My order is late", "It was due Monday"]
        assert {m["direction"] for m in ticket["context"]} == {"inbound"}

        internal = await client.post(
            f"/api/tickets/{ticket['id']}/comments", json={"text": "Checking with the courier"}
        )
        assert internal.status_code == 201
        assert internal.json()["public"] is False
        public = await client.post(
            f"/api/tickets/{ticket['id']}/comments",
            json={"text": "Your parcel arrives tomorrow.", "public": True},
        )
        assert public.status_code == 201, public.text
        # The public reply goes out through the conversation's channel; the internal one never does.
        await eventually(lambda: receiver.of_type("message"))
        assert [p["text"] for p in receiver.of_type("message")] == ["Your parcel arrives tomorrow."]
        assert receiver.of_type("message")[0]["message_id"] == public.json()["id"]
        messages = (await client.get(f"/api/inbox/conversations/{conversation_id}/messages")).json()["items"]
        assert messages[0]["text"] == "Your parcel arrives tomorrow."
        assert messages[0]["sender_user_id"] == str(agent.user_id)

        comments = (await client.get(f"/api/tickets/{ticket['id']}/comments")).json()["items"]
        assert [c["text"] for c in comments] == ["Checking with the courier", "Your parcel arrives tomorrow."]

        for status in ("in_progress", "resolved", "closed"):
            moved = await client.patch(f"/api/tickets/{ticket['id']}", json={"status": status})
            assert moved.status_code == 200, moved.text
        closed = moved.json()
        assert closed["resolved_at"] is not None
        assert closed["closed_at"] is not None
        # Closed work resumes only by reopening.
        refused = await client.patch(f"/api/tickets/{ticket['id']}", json={"status": "in_progress"})
        assert refused.status_code == 400
        assert refused.json()["errors"][0]["field"] == "status"
        reopened = await client.patch(f"/api/tickets/{ticket['id']}", json={"status": "open"})
        assert reopened.json()["status"] == "open"
        assert reopened.json()["closed_at"] is None

        changes = (await client.get(f"/api/tickets/{ticket['id']}/timeline")).json()["items"]
        assert [c["kind"] for c in changes] == [
            "status",  # reopened
            "status",
            "status",
            "status",
            "first_response",
            "comment",
            "comment",
            "assignee",
            "created",
        ]
        assert changes[0]["details"] == {"old": "closed", "new": "open"}
        assert all(c["actor_id"] == str(agent.user_id) for c in changes)

        # Opening and closing are on the customer's CRM timeline.
        activity = (await client.get(f"/api/crm/customers/{customer_id}/activity")).json()["items"]
        kinds = [a["kind"] for a in activity]
        assert kinds.index("ticket_reopened") < kinds.index("ticket_closed") < kinds.index("ticket_opened")
        opened = next(a for a in activity if a["kind"] == "ticket_opened")
        assert opened["details"] == {"ticket_id": ticket["id"], "number": 1, "title": "Late order"}


async def test_agents_see_only_their_tickets_members_read_managers_assign(
    hub: RunningHub, organization: Organization
) -> None:
    agent, member = organization.members["agent"], organization.members["member"]
    async with hub.client(organization.members["manager"].token, language="en") as client:
        theirs = (
            await client.post(
                "/api/tickets", json={"title": "For the agent", "assignee_id": str(agent.user_id)}
            )
        ).json()
        other = (await client.post("/api/tickets", json={"title": "Unassigned"})).json()
        to_member = await client.post("/api/tickets", json={"title": "x", "assignee_id": str(member.user_id)})
        assert to_member.status_code == 400
        assert to_member.json()["errors"][0]["field"] == "assignee_id"
    async with hub.client(agent.token) as client:
        listed = (await client.get("/api/tickets")).json()["items"]
        assert [t["id"] for t in listed] == [theirs["id"]]
        assert (await client.get(f"/api/tickets/{other['id']}")).status_code == 404
        assert (
            await client.patch(f"/api/tickets/{other['id']}", json={"status": "in_progress"})
        ).status_code == 404
        assert (
            await client.post(f"/api/tickets/{other['id']}/comments", json={"text": "hi"})
        ).status_code == 404
        assert (
            await client.patch(f"/api/tickets/{theirs['id']}", json={"priority": "urgent"})
        ).status_code == 200
        # Agents do not hand tickets around.
        assert (
            await client.post(f"/api/tickets/{theirs['id']}/assign", json={"assignee_id": None})
        ).status_code == 403
        assert (
            await client.post(
                "/api/tickets", json={"title": "x", "assignee_id": str(organization.admin.user_id)}
            )
        ).status_code == 400
    async with hub.client(member.token) as client:
        assert len((await client.get("/api/tickets")).json()["items"]) == 2
        assert (await client.get(f"/api/tickets/{other['id']}")).status_code == 200
        assert (await client.post("/api/tickets", json={"title": "x"})).status_code == 403
        assert (await client.patch(f"/api/tickets/{other['id']}", json={"title": "y"})).status_code == 403
        assert (
            await client.post(f"/api/tickets/{other['id']}/comments", json={"text": "y"})
        ).status_code == 403
    stranger = await register(hub)
    async with hub.client(stranger.admin.token) as client:
        assert (await client.get(f"/api/tickets/{theirs['id']}")).status_code == 404
        assert (await client.get("/api/tickets")).json()["items"] == []
        assert (
            await client.post(f"/api/tickets/{theirs['id']}/assign", json={"assignee_id": None})
        ).status_code == 404
    async with hub.client(organization.admin.token) as client:
        outsider = await client.post(
            f"/api/tickets/{other['id']}/assign", json={"assignee_id": str(stranger.admin.user_id)}
        )
        assert outsider.status_code == 400
        assert outsider.json()["errors"][0]["field"] == "assignee_id"
        moved = await client.post(f"/api/tickets/{theirs['id']}/assign", json={"assignee_id": None})
        assert moved.json()["assignee_id"] is None
    async with hub.client(agent.token) as client:
        assert (await client.get(f"/api/tickets/{theirs['id']}")).status_code == 404  # no longer theirs


async def test_bad_input_names_the_field(hub: RunningHub, organization: Organization) -> None:
    async with hub.client(organization.admin.token, language="en") as client:
        cases: list[tuple[dict[str, Any], str]] = [
            ({"title": "x", "priority": "soon"}, "priority"),
            ({"title": "x", "kind": "billing"}, "kind"),
            ({"title": ""}, "title"),
            ({"title": "x", "customer_id": "00000000-0000-7000-8000-000000000000"}, "customer_id"),
            ({"title": "x", "conversation_id": "00000000-0000-7000-8000-000000000000"}, "conversation_id"),
        ]
        for body, field in cases:
            answer = await client.post("/api/tickets", json=body)
            assert answer.status_code == 400, (body, answer.text)
            assert answer.json()["errors"][0]["field"] == field, answer.json()
        ticket = (await client.post("/api/tickets", json={"title": "x"})).json()
        unknown = await client.patch(f"/api/tickets/{ticket['id']}", json={"status": "done"})
        assert unknown.status_code == 400
        assert unknown.json()["errors"][0]["field"] == "status"
        no_chat = await client.post(
            f"/api/tickets/{ticket['id']}/comments", json={"text": "hi", "public": True}
        )
        assert no_chat.json()["errors"][0]["field"] == "public"
        empty = await client.post(f"/api/tickets/{ticket['id']}/comments", json={"text": "  "})
        assert empty.json()["errors"][0]["field"] == "text"
        nobody = await client.post(
            f"/api/tickets/{ticket['id']}/comments",
            json={"text": "hi", "mentions": ["00000000-0000-7000-8000-000000000000"]},
        )
        assert nobody.json()["errors"][0]["field"] == "mentions"
        for body, field in (
            ({"first_response_minutes": 0, "resolution_minutes": 60}, "first_response_minutes"),
            ({"first_response_minutes": 30, "resolution_minutes": -5}, "resolution_minutes"),
        ):
            refused = await client.put("/api/tickets/sla-policies/high", json=body)
            assert refused.status_code == 400
            assert refused.json()["errors"][0]["field"] == field
        assert (
            await client.put(
                "/api/tickets/sla-policies/whenever",
                json={"first_response_minutes": 1, "resolution_minutes": 1},
            )
        ).status_code == 404
        backwards = await client.patch(
            "/api/tickets/settings", json={"business_hours": {"sun": [["17:00", "09:00"]]}}
        )
        assert backwards.status_code == 400
        assert backwards.json()["errors"][0]["field"] == "business_hours.sun"
        zone = await client.patch("/api/tickets/settings", json={"time_zone": "Mars/Olympus"})
        assert zone.json()["errors"][0]["field"] == "time_zone"


async def test_filters_search_and_cursor(hub: RunningHub, organization: Organization) -> None:
    agent = organization.members["agent"]
    async with hub.client(organization.members["manager"].token) as client:
        customer = (await client.post("/api/crm/customers", json={"name": "Reem"})).json()
        made = []
        for number, (title, priority, assignee) in enumerate(
            [
                ("Printer jam", "low", None),
                ("Refund for order 77", "high", agent.user_id),
                ("Login fails", "urgent", organization.members["manager"].user_id),
                ("Invoice copy", "normal", None),
            ]
        ):
            body = {
                "title": title,
                "priority": priority,
                "customer_id": customer["id"] if number % 2 else None,
            }
            if assignee:
                body["assignee_id"] = str(assignee)
            made.append((await client.post("/api/tickets", json=body)).json())
        await client.patch(f"/api/tickets/{made[0]['id']}", json={"status": "waiting_on_customer"})

        async def titles(**params: Any) -> list[str]:
            return [t["title"] for t in (await client.get("/api/tickets", params=params)).json()["items"]]

        assert await titles() == ["Invoice copy", "Login fails", "Refund for order 77", "Printer jam"]
        assert await titles(status=["open"]) == ["Invoice copy", "Login fails", "Refund for order 77"]
        assert await titles(status=["waiting_on_customer", "resolved"]) == ["Printer jam"]
        assert await titles(priority=["high", "urgent"]) == ["Login fails", "Refund for order 77"]
        assert await titles(assignee="me") == ["Login fails"]
        assert await titles(assignee="unassigned") == ["Invoice copy", "Printer jam"]
        assert await titles(assignee=str(agent.user_id)) == ["Refund for order 77"]
        assert await titles(customer=customer["id"]) == ["Invoice copy", "Refund for order 77"]
        assert await titles(q="REFUND") == ["Refund for order 77"]
        assert await titles(q="#3") == ["Login fails"]
        assert await titles(breached="true") == []
        assert (await client.get("/api/tickets", params={"status": "done"})).status_code == 400
        assert (await client.get("/api/tickets", params={"assignee": "someone"})).status_code == 400
        seen, cursor = [], None
        while True:
            page = (
                await client.get(
                    "/api/tickets", params={"limit": 3, **({"cursor": cursor} if cursor else {})}
                )
            ).json()
            seen += [t["title"] for t in page["items"]]
            if not (cursor := page["next_cursor"]):
                break
        assert seen == await titles()


async def test_attachments_use_the_media_store_and_its_limits(
    hub: RunningHub, organization: Organization
) -> None:
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    )
    async with hub.client(organization.admin.token) as client:
        uploaded = await client.post("/api/media", files={"file": ("screen.png", png, "image/png")})
        assert uploaded.status_code == 201, uploaded.text
        ticket = (await client.post("/api/tickets", json={"title": "Screen"})).json()
        comment = await client.post(
            f"/api/tickets/{ticket['id']}/comments",
            json={"text": "see", "attachments": [uploaded.json()["id"]]},
        )
        assert comment.status_code == 201
        attachment = comment.json()["attachments"][0]
        assert (attachment["kind"], attachment["filename"]) == ("image", "screen.png")
        fetched = await client.get(attachment["url"])
        assert fetched.content == png
        listed = (await client.get(f"/api/tickets/{ticket['id']}/comments")).json()["items"]
        assert listed[0]["attachments"][0]["id"] == uploaded.json()["id"]
        fake = await client.post(
            "/api/media", files={"file": ("virus.png", b"MZ\x90\x00not a png", "image/png")}
        )
        assert fake.status_code == 415
    other = await register(hub)
    async with hub.client(other.admin.token) as client:
        theirs = (await client.post("/api/tickets", json={"title": "Mine"})).json()
        borrowed = await client.post(
            f"/api/tickets/{theirs['id']}/comments",
            json={"text": "x", "attachments": [uploaded.json()["id"]]},
        )
        assert borrowed.status_code == 400
        assert borrowed.json()["errors"][0]["field"] == "attachments"
