"""Segments: saved filters evaluated by the database, checked against hand-computed members."""

from __future__ import annotations

import csv
import io
from typing import Any

from tests.conftest import Organization, RunningHub, register
from tests.helpers.channels import Receiver, make_channel


async def test_segments_match_what_was_computed_by_hand(
    hub: RunningHub, organization: Organization, receiver: Receiver
) -> None:
    website = await make_channel(hub, organization, receiver)
    async with hub.client(organization.admin.token, language="en") as client:
        for definition in (
            {"key": "budget", "label": "Budget", "kind": "number"},
            {"key": "tier", "label": "Tier", "kind": "choice", "choices": ["gold", "silver"]},
            {"key": "renewal", "label": "Renewal", "kind": "date"},
        ):
            await client.post("/api/crm/attributes", json=definition)
        stages = (await client.get("/api/crm/sales-stages")).json()
        people: dict[str, dict[str, Any]] = {}
        for name, body in {
            "Amal": {"tags": ["vip"], "language": "ar", "attributes": {"budget": 5000, "tier": "gold"}},
            "Badr": {"tags": ["vip", "riyadh"], "language": "en", "attributes": {"budget": 800}},
            "Carim": {
                "tags": ["riyadh"],
                "language": "ar",
                "attributes": {"tier": "silver", "renewal": "2027-01-10"},
            },
            "Dana": {"tags": [], "language": "ar", "opted_out": True, "attributes": {"budget": 9000}},
            "Eyad": {
                "tags": ["vip"],
                "language": "ar",
                "opted_out": True,
                "attributes": {"renewal": "2026-06-01"},
            },
        }.items():
            people[name] = (await client.post("/api/crm/customers", json={"name": name, **body})).json()
        await client.post(
            "/api/crm/deals",
            json={"title": "d", "customer_id": people["Badr"]["id"], "stage_id": stages[2]["id"]},
        )
        await client.post(
            "/api/crm/deals",
            json={"title": "d", "customer_id": people["Dana"]["id"], "stage_id": stages[2]["id"]},
        )
        await client.post(
            "/api/crm/deals",
            json={"title": "d", "customer_id": people["Amal"]["id"], "stage_id": stages[0]["id"]},
        )
    # Carim, with a phone number now, writes in on the website channel: the same customer.
    async with hub.client(organization.admin.token) as client:
        await client.patch(f"/api/crm/customers/{people['Carim']['id']}", json={"phone": "+966541112233"})
    await website.send(external_id="seg-1", **{"from": "+966541112233"}, text="hello")

    cases: list[tuple[dict[str, Any], set[str], int]] = [
        ({"tags": ["vip"]}, {"Amal", "Badr", "Eyad"}, 1),
        ({"tags": ["vip", "riyadh"]}, {"Amal", "Badr", "Carim", "Eyad"}, 1),
        ({"tags": ["vip"], "languages": ["ar"]}, {"Amal", "Eyad"}, 1),
        ({"stage_ids": [stages[2]["id"]]}, {"Badr", "Dana"}, 1),
        ({"attributes": [{"key": "budget", "op": "gte", "value": 1000}]}, {"Amal", "Dana"}, 1),
        ({"attributes": [{"key": "tier", "op": "in", "value": ["gold", "silver"]}]}, {"Amal", "Carim"}, 0),
        ({"attributes": [{"key": "renewal", "op": "lt", "value": "2027-01-01"}]}, {"Eyad"}, 1),
        ({"channel_ids": [website.id]}, {"Carim"}, 0),
        ({"last_contacted_after": "2020-01-01T00:00:00Z"}, {"Carim"}, 0),
        # Quiet since then: Carim wrote today, Badr never did.
        ({"last_contacted_before": "2020-01-01T00:00:00Z", "tags": ["riyadh"]}, {"Badr"}, 0),
        ({}, {"Amal", "Badr", "Carim", "Dana", "Eyad"}, 2),
    ]
    async with hub.client(organization.members["manager"].token, language="en") as client:
        for filters, expected, opted_out in cases:
            preview = (await client.post("/api/crm/segments/preview", json=filters)).json()
            assert preview == {
                "matching": len(expected),
                "sendable": len(expected) - opted_out,
                "opted_out": opted_out,
            }, filters
        saved = await client.post("/api/crm/segments", json={"name": "VIPs", "filters": {"tags": ["vip"]}})
        assert saved.status_code == 201, saved.text
        assert saved.json()["counts"] == {"matching": 3, "sendable": 2, "opted_out": 1}
        assert (await client.post("/api/crm/segments", json={"name": "VIPs"})).status_code == 409
        members = (await client.get(f"/api/crm/segments/{saved.json()['id']}/customers")).json()["items"]
        assert {m["name"] for m in members} == {"Amal", "Badr", "Eyad"}
        changed = await client.patch(
            f"/api/crm/segments/{saved.json()['id']}",
            json={"filters": {"tags": ["vip"], "languages": ["en"]}},
        )
        assert changed.json()["counts"]["matching"] == 1
        assert [s["name"] for s in (await client.get("/api/crm/segments")).json()] == ["VIPs"]

        for filters, field in (
            ({"attributes": [{"key": "colour", "value": "red"}]}, "filters.attributes.colour"),
            ({"attributes": [{"key": "budget", "value": "lots"}]}, "filters.attributes.budget"),
            ({"attributes": [{"key": "tier", "op": "gt", "value": "gold"}]}, "filters.attributes.tier"),
        ):
            refused = await client.post("/api/crm/segments", json={"name": "Bad", "filters": filters})
            assert refused.status_code == 400, filters
            assert refused.json()["errors"][0]["field"] == field
        assert (await client.post("/api/crm/segments/preview", json={"colour": ["red"]})).status_code == 400
    async with hub.client(organization.members["agent"].token) as client:
        assert (await client.post("/api/crm/segments", json={"name": "x"})).status_code == 403
    other = await register(hub)
    async with hub.client(other.admin.token) as client:
        assert (await client.get(f"/api/crm/segments/{saved.json()['id']}")).status_code == 404
        assert (await client.post("/api/crm/segments/preview", json={})).json()["matching"] == 0


async def test_a_segment_exports_as_csv_in_batches(hub: RunningHub, organization: Organization) -> None:
    from crm.models import Customer

    async with hub.runtime.db.session(organization.id) as session:
        session.add_all(
            Customer(name=f"Customer {n:04d}", phone=f"+9665{n:08d}", tags=["bulk"], attributes={})
            for n in range(2500)
        )
        session.add(
            Customer(name='=HYPERLINK("http://x")', email="a@b.co", tags=["bulk", "odd"], attributes={})
        )
        await session.commit()
    async with hub.client(organization.admin.token) as client:
        await client.post("/api/crm/attributes", json={"key": "city", "label": "City", "kind": "text"})
        segment = (
            await client.post("/api/crm/segments", json={"name": "Bulk", "filters": {"tags": ["bulk"]}})
        ).json()
        exported = await client.get(f"/api/crm/segments/{segment['id']}/export")
        assert exported.status_code == 200
        assert exported.headers["content-type"].startswith("text/csv")
        assert "attachment" in exported.headers["content-disposition"]
        other = await register(hub)
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0] == [
        "id",
        "name",
        "phone",
        "email",
        "language",
        "opted_out",
        "tags",
        "company_id",
        "created_at",
        "city",
    ]
    body = rows[1:]
    assert len(body) == 2501
    assert len({row[0] for row in body}) == 2501  # every customer once, across the batches
    assert [row[0] for row in body] == sorted(row[0] for row in body)
    odd = next(row for row in body if "odd" in row[6])
    assert odd[1] == '\'=HYPERLINK("http://x")'  # not a formula in a spreadsheet
    assert body[0][2].startswith("+9665")  # phone numbers are left as they are
    async with hub.client(other.admin.token) as client:
        assert (await client.get(f"/api/crm/segments/{segment['id']}/export")).status_code == 404
