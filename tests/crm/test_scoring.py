"""Lead scores from the organization's rules, with the factors that made them, checked against
points worked out by hand."""

from __future__ import annotations

from typing import Any

from tests.conftest import Organization, RunningHub, eventually
from tests.helpers.channels import Receiver, make_channel


def points(customer: dict[str, Any]) -> dict[str, int]:
    return {factor["factor"]: factor["points"] for factor in customer["score_factors"]}


async def test_scores_follow_the_rules_and_explain_themselves(
    hub: RunningHub, organization: Organization, receiver: Receiver
) -> None:
    channel = await make_channel(hub, organization, receiver)
    stored = (
        await channel.send(external_id="s-1", **{"from": "+966561234567"}, name="Hind", text="hi")
    ).json()
    async with hub.client(organization.members["manager"].token, language="en") as client:
        conversation = (await client.get(f"/api/inbox/conversations/{stored['conversation_id']}")).json()
        customer_id = conversation["customer"]["id"]

        async def wrote_recently() -> dict[str, Any] | None:
            customer = (await client.get(f"/api/crm/customers/{customer_id}")).json()
            return customer if points(customer).get("recent_message") == 25 else None

        customer = await eventually(wrote_recently)  # scored when the conversation started
        assert customer["score"] == 25

        stages = (await client.get("/api/crm/sales-stages")).json()  # 4 open stages, then won, lost
        deal = (
            await client.post(
                "/api/crm/deals",
                json={
                    "title": "Trucks",
                    "customer_id": customer_id,
                    "stage_id": stages[2]["id"],
                    "amount": "12500",
                    "source": "Referral",
                },
            )
        ).json()
        for text in ("called", "sent brochure"):
            await client.post(
                f"/api/crm/customers/{customer_id}/activity", json={"kind": "note", "text": text}
            )
        customer = (await client.get(f"/api/crm/customers/{customer_id}")).json()
        # 25 recent + round(30 × 3/4) = 22 for the third of four open stages + 12 for 12,500 + 2 × 2 notes
        assert points(customer) == {
            "recent_message": 25,
            "deal_stage": 22,
            "deal_amount": 12,
            "activities": 4,
        }
        assert customer["score"] == 63

    async with hub.client(organization.admin.token) as client:
        rules = (await client.get("/api/crm/settings")).json()["scoring"]
        assert rules["recent_points"] == 25
        changed = await client.patch(
            "/api/crm/settings", json={"scoring": {**rules, "hot_sources": ["referral"]}}
        )
        assert changed.status_code == 200
        assert changed.json()["scoring"]["hot_sources"] == ["referral"]
        bad = await client.patch("/api/crm/settings", json={"scoring": {**rules, "won_points": 500}})
        assert bad.status_code == 400

        async def rescored() -> dict[str, Any] | None:
            customer = (await client.get(f"/api/crm/customers/{customer_id}")).json()
            return customer if customer["score"] == 73 else None

        customer = await eventually(rescored)  # everyone is rescored in the background
        assert points(customer)["source"] == 10

        await client.patch(f"/api/crm/deals/{deal['id']}", json={"stage_id": stages[4]["id"]})  # won
        explained = (await client.post(f"/api/crm/customers/{customer_id}/score")).json()
        # The open stage no longer counts; the sale does: 25 + 20 + 12 + 4 + 10.
        assert {f["factor"]: f["points"] for f in explained["factors"]} == {
            "recent_message": 25,
            "deal_won": 20,
            "deal_amount": 12,
            "activities": 4,
            "source": 10,
        }
        assert explained["score"] == 71
        hot = (await client.post("/api/crm/segments/preview", json={"score_min": 70})).json()
        cold = (await client.post("/api/crm/segments/preview", json={"score_max": 69})).json()
        assert hot["matching"] == 1
        assert cold["matching"] == 0

        # The customer answered one of the two replies sent since: half of 15 reply points.
        conversation_path = f"/api/inbox/conversations/{stored['conversation_id']}/messages"
        assert (await client.post(conversation_path, json={"text": "Shall we meet?"})).status_code == 201
        await channel.send(external_id="s-2", **{"from": "+966561234567"}, text="Yes, Sunday")
        assert (await client.post(conversation_path, json={"text": "Ten o'clock?"})).status_code == 201
        await client.post(conversation_path, json={"text": "a note", "private": True})  # not to the customer
        explained = (await client.post(f"/api/crm/customers/{customer_id}/score")).json()
        reply = next(f for f in explained["factors"] if f["factor"] == "reply_rate")
        assert reply == {"factor": "reply_rate", "points": 8, "detail": {"answered": 1, "sent": 2}}
        assert explained["score"] == 79
