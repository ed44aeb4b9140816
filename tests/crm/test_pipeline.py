"""The sales pipeline: stages, deals on a board with totals, moves recorded on the timeline and
pushed live; companies; the activity timeline, including what the hub records by itself."""

from __future__ import annotations

from typing import Any

from tests.conftest import Organization, RunningHub, eventually, register
from tests.helpers.channels import Receiver, make_channel
from tests.helpers.sockets import connect


async def test_default_stages_in_the_callers_language_and_their_editing(
    hub: RunningHub, organization: Organization
) -> None:
    async with hub.client(organization.admin.token, language="ar") as client:
        stages = (await client.get("/api/crm/sales-stages")).json()
        assert [s["name"] for s in stages] == ["جديد", "تم التواصل", "مؤهَّل", "عرض", "ربحناها", "خسرناها"]
        assert [s["outcome"] for s in stages] == ["open"] * 4 + ["won", "lost"]
        assert [s["position"] for s in stages] == list(range(6))
        added = await client.post("/api/crm/sales-stages", json={"name": "Demo", "position": 2})
        assert added.status_code == 201
        renamed = await client.patch(f"/api/crm/sales-stages/{stages[0]['id']}", json={"name": "Lead"})
        assert renamed.json()["name"] == "Lead"
        moved = await client.patch(f"/api/crm/sales-stages/{stages[0]['id']}", json={"position": 3})
        assert moved.json()["position"] == 3
        names = [s["name"] for s in (await client.get("/api/crm/sales-stages")).json()]
        assert names == ["تم التواصل", "Demo", "مؤهَّل", "Lead", "عرض", "ربحناها", "خسرناها"]
    async with hub.client(organization.members["agent"].token) as client:
        assert (await client.get("/api/crm/sales-stages")).status_code == 200
        assert (await client.post("/api/crm/sales-stages", json={"name": "x"})).status_code == 403


async def deal_setup(
    hub: RunningHub, organization: Organization
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    async with hub.client(organization.admin.token, language="en") as client:
        customer = (await client.post("/api/crm/customers", json={"name": "Faisal"})).json()
        stages = (await client.get("/api/crm/sales-stages")).json()
    return customer, stages


async def test_deals_on_the_board_moves_recorded_and_pushed(
    hub: RunningHub, organization: Organization
) -> None:
    customer, stages = await deal_setup(hub, organization)
    new, contacted, won = stages[0], stages[1], stages[4]
    other = await register(hub)
    screens = {
        "manager": await connect(hub, organization.members["manager"].token),
        "agent": await connect(hub, organization.members["agent"].token),
        "member": await connect(hub, organization.members["member"].token),
        "other organization": await connect(hub, other.admin.token),
    }
    async with hub.client(organization.members["manager"].token, language="en") as client:
        company = (
            await client.post(
                "/api/crm/companies", json={"name": "Nakheel", "domain": "https://www.Nakheel.sa/"}
            )
        ).json()
        assert company["domain"] == "nakheel.sa"
        first = await client.post(
            "/api/crm/deals",
            json={
                "title": "Fleet tracking",
                "customer_id": customer["id"],
                "company_id": company["id"],
                "amount": "12000.50",
            },
        )
        assert first.status_code == 201, first.text
        deal = first.json()
        assert deal["stage_id"] == new["id"]  # the first stage when none is given
        assert deal["currency"] == "SAR"
        assert deal["owner_id"] == str(organization.members["manager"].user_id)
        second = (
            await client.post(
                "/api/crm/deals",
                json={
                    "title": "Spare parts",
                    "customer_id": customer["id"],
                    "amount": "800",
                    "stage_id": new["id"],
                },
            )
        ).json()
        third = (
            await client.post(
                "/api/crm/deals",
                json={"title": "Export", "customer_id": customer["id"], "amount": "100", "currency": "USD"},
            )
        ).json()

        moved = await client.patch(f"/api/crm/deals/{deal['id']}", json={"stage_id": contacted["id"]})
        assert moved.status_code == 200
        assert moved.json()["closed_at"] is None
        sold = await client.patch(
            f"/api/crm/deals/{deal['id']}", json={"stage_id": won["id"], "reason": "best offer"}
        )
        assert sold.json()["closed_at"] is not None  # the lead became a sale: its amount and date

        board = (await client.get("/api/crm/board")).json()
        by_stage = {column["stage"]["id"]: column for column in board}
        assert [column["stage"]["id"] for column in board] == [s["id"] for s in stages]
        assert [d["id"] for d in by_stage[new["id"]]["deals"]] == [third["id"], second["id"]]
        assert by_stage[new["id"]]["count"] == 2
        assert by_stage[new["id"]]["totals"] == [
            {"currency": "SAR", "amount": "800.00"},
            {"currency": "USD", "amount": "100.00"},
        ]
        assert by_stage[won["id"]]["totals"] == [{"currency": "SAR", "amount": "12000.50"}]
        mine = (await client.get("/api/crm/board", params={"owner": "me"})).json()
        assert sum(column["count"] for column in mine) == 3

        timeline = (await client.get(f"/api/crm/customers/{customer['id']}/activity")).json()["items"]
        changes = [a["details"] for a in timeline if a["kind"] == "deal_stage_changed"]
        assert changes[0]["from"] == contacted["name"]
        assert changes[0]["to"] == won["name"]
        assert changes[0]["outcome"] == "won"
        assert changes[1]["from"] == new["name"]

        bad_amount = await client.post(
            "/api/crm/deals", json={"title": "x", "customer_id": customer["id"], "amount": "-1"}
        )
        assert bad_amount.json()["errors"][0]["field"] == "amount"
        bad_currency = await client.post(
            "/api/crm/deals", json={"title": "x", "customer_id": customer["id"], "currency": "riyal"}
        )
        assert bad_currency.status_code == 400
    # Someone else's stage, customer or deal does not exist here.
    async with hub.client(other.admin.token, language="en") as client:
        their_customer = (await client.post("/api/crm/customers", json={"name": "Theirs"})).json()
        refused = await client.post(
            "/api/crm/deals", json={"title": "x", "customer_id": their_customer["id"], "stage_id": new["id"]}
        )
        assert refused.status_code == 400
        assert refused.json()["errors"][0]["field"] == "stage_id"
        assert (await client.get(f"/api/crm/deals/{deal['id']}")).status_code == 404
        assert (await client.patch(f"/api/crm/deals/{deal['id']}", json={"title": "x"})).status_code == 404

    await eventually(lambda: len(screens["member"].named("dealUpdated")) >= 5)
    for role in ("manager", "agent", "member"):  # everyone who may read the CRM sees the board move
        updates = screens[role].named("dealUpdated")
        assert [u["deal"]["title"] for u in updates] == [
            "Fleet tracking",
            "Spare parts",
            "Export",
            "Fleet tracking",
            "Fleet tracking",
        ]
        assert updates[-1]["stageId"] == won["id"]
    assert screens["other organization"].named("dealUpdated") == []
    for screen in screens.values():
        await screen.client.disconnect()


async def test_deleting_a_stage_moves_its_deals_to_the_chosen_one(
    hub: RunningHub, organization: Organization
) -> None:
    customer, stages = await deal_setup(hub, organization)
    async with hub.client(organization.admin.token, language="en") as client:
        deal = (
            await client.post("/api/crm/deals", json={"title": "Move me", "customer_id": customer["id"]})
        ).json()
        without_target = await client.delete(f"/api/crm/sales-stages/{stages[0]['id']}")
        assert without_target.status_code == 400
        assert without_target.json()["errors"][0]["field"] == "move_to"
        deleted = await client.delete(
            f"/api/crm/sales-stages/{stages[0]['id']}", params={"move_to": stages[2]["id"]}
        )
        assert deleted.status_code == 204
        assert (await client.get(f"/api/crm/deals/{deal['id']}")).json()["stage_id"] == stages[2]["id"]
        left = (await client.get("/api/crm/sales-stages")).json()
        assert [s["id"] for s in left] == [s["id"] for s in stages[1:]]
        assert [s["position"] for s in left] == list(range(5))
        empty = await client.delete(f"/api/crm/sales-stages/{stages[1]['id']}")
        assert empty.status_code == 204  # no deals: no target needed


async def test_activities_and_the_timeline(
    hub: RunningHub, organization: Organization, receiver: Receiver
) -> None:
    channel = await make_channel(hub, organization, receiver)
    stored = (
        await channel.send(external_id="act-1", **{"from": "+966551234567"}, name="Reem", text="hello")
    ).json()
    await channel.send(external_id="act-2", **{"from": "+966551234567"}, text="again")
    async with hub.client(organization.admin.token, language="en") as client:
        conversation = (await client.get(f"/api/inbox/conversations/{stored['conversation_id']}")).json()
        customer_id = conversation["customer"]["id"]

        async def started() -> list[dict[str, Any]]:
            items = (await client.get(f"/api/crm/customers/{customer_id}/activity")).json()["items"]
            return [a for a in items if a["kind"] == "conversation_started"]

        recorded = await eventually(started)
        assert len(recorded) == 1  # the second message continued the same conversation
        assert recorded[0]["details"]["conversation_id"] == stored["conversation_id"]
    async with hub.client(organization.members["agent"].token, language="en") as client:
        note = await client.post(
            f"/api/crm/customers/{customer_id}/activity", json={"kind": "note", "text": "Prefers calls"}
        )
        assert note.status_code == 201
        task = await client.post(
            f"/api/crm/customers/{customer_id}/activity",
            json={"kind": "task", "text": "Send the quote", "due_at": "2026-12-01T09:00:00Z"},
        )
        assert task.json()["due_at"].startswith("2026-12-01T09:00:00")
        done = await client.patch(
            f"/api/crm/customers/{customer_id}/activity/{task.json()['id']}", json={"done": True}
        )
        assert done.json()["done_at"] is not None
        refused = await client.post(
            f"/api/crm/customers/{customer_id}/activity",
            json={"kind": "note", "text": "x", "due_at": "2026-12-01T09:00:00Z"},
        )
        assert refused.json()["errors"][0]["field"] == "due_at"
        unknown_kind = await client.post(
            f"/api/crm/customers/{customer_id}/activity", json={"kind": "party", "text": "x"}
        )
        assert unknown_kind.status_code == 400
        page = (await client.get(f"/api/crm/customers/{customer_id}/activity", params={"limit": 2})).json()
        assert [a["kind"] for a in page["items"]] == ["task", "note"]  # newest first
        rest = (
            await client.get(
                f"/api/crm/customers/{customer_id}/activity", params={"cursor": page["next_cursor"]}
            )
        ).json()
        # The conversation is not the agent's: its entry is left out for them.
        assert rest["items"] == []
        assert rest["next_cursor"] is None
    other = await register(hub)
    async with hub.client(other.admin.token) as client:
        assert (await client.get(f"/api/crm/customers/{customer_id}/activity")).status_code == 404
        assert (
            await client.post(
                f"/api/crm/customers/{customer_id}/activity", json={"kind": "note", "text": "x"}
            )
        ).status_code == 404


async def test_companies(hub: RunningHub, organization: Organization) -> None:
    async with hub.client(organization.admin.token, language="en") as client:
        created = await client.post(
            "/api/crm/companies",
            json={"name": "Rawabi", "domain": "rawabi.com", "sector": "Logistics", "size": 120},
        )
        assert created.status_code == 201
        company = created.json()
        duplicate = await client.post(
            "/api/crm/companies", json={"name": "Other", "domain": "WWW.rawabi.com"}
        )
        assert duplicate.status_code == 409
        assert duplicate.json()["existing_id"] == company["id"]
        assert (
            await client.post("/api/crm/companies", json={"name": "X", "domain": "nodot"})
        ).status_code == 400
        customer = await client.post(
            "/api/crm/customers", json={"name": "Khalid", "company_id": company["id"]}
        )
        assert customer.json()["company_id"] == company["id"]
        members = (await client.get("/api/crm/customers", params={"company": company["id"]})).json()["items"]
        assert [c["name"] for c in members] == ["Khalid"]
        assert [
            c["name"] for c in (await client.get("/api/crm/companies", params={"q": "raw"})).json()["items"]
        ] == ["Rawabi"]
        changed = await client.patch(f"/api/crm/companies/{company['id']}", json={"size": 150})
        assert changed.json()["size"] == 150
        assert (await client.delete(f"/api/crm/companies/{company['id']}")).status_code == 204
        # The customer stays, without a company.
        assert (await client.get(f"/api/crm/customers/{customer.json()['id']}")).json()["company_id"] is None


async def test_entries_belong_to_their_authors_and_readers_see_only_what_they_may(
    hub: RunningHub, organization: Organization, receiver: Receiver
) -> None:
    channel = await make_channel(hub, organization, receiver)
    stored = (await channel.send(external_id="own-1", **{"from": "+966551230000"}, text="hi")).json()
    admin, agent, member = (organization.members[r] for r in ("admin", "agent", "member"))
    async with hub.client(admin.token) as client:
        customer_id = (await client.get(f"/api/inbox/conversations/{stored['conversation_id']}")).json()[
            "customer"
        ]["id"]
        ticket = (
            await client.post(
                "/api/tickets", json={"title": "Refund the broken tracker", "customer_id": customer_id}
            )
        ).json()
    async with hub.client(member.token, language="en") as client:
        note = (
            await client.post(
                f"/api/crm/customers/{customer_id}/activity", json={"kind": "call", "text": "Called"}
            )
        ).json()
    url = f"/api/crm/customers/{customer_id}/activity/{note['id']}"
    async with hub.client(agent.token, language="en") as client:
        refused = await client.patch(url, json={"text": "Never called"})
        assert refused.status_code == 403

        async def kinds() -> list[str]:
            items = (await client.get(f"/api/crm/customers/{customer_id}/activity")).json()["items"]
            return [a["kind"] for a in items]

        # Neither the unassigned ticket's entry nor the conversation's is shown to the agent.
        assert await kinds() == ["call"]
    async with hub.client(member.token) as client:
        assert (await client.patch(url, json={"text": "Called twice"})).status_code == 200
    async with hub.client(organization.members["manager"].token) as client:
        assert (await client.patch(url, json={"text": "Called, left a message"})).status_code == 200
        assigned = await client.post(
            f"/api/tickets/{ticket['id']}/assign", json={"assignee_id": str(agent.user_id)}
        )
        assert assigned.status_code == 200, assigned.text
    async with hub.client(agent.token) as client:
        items = (await client.get(f"/api/crm/customers/{customer_id}/activity")).json()["items"]
        assert [a["kind"] for a in items] == ["call", "ticket_opened"]  # now the ticket is theirs
        assert items[0]["text"] == "Called, left a message"
    async with hub.client(admin.token) as client:
        items = (await client.get(f"/api/crm/customers/{customer_id}/activity")).json()["items"]
        assert {a["kind"] for a in items} == {"call", "ticket_opened", "conversation_started"}
