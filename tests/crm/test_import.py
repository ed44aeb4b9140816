"""CSV import of customers: a column mapping, every bad row reported with its reason, duplicates
skipped or updated, progress pushed to whoever started it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Organization, RunningHub, eventually, register
from tests.helpers.sockets import connect

CSV = (
    "Full name,Mobile,E-mail,Lang,Labels,Unsubscribed,Employer,Budget,Notes\n"
    "Huda,0501234567,huda@example.com,ar,vip;riyadh,no,Tamr,5000,first\n"
    "Badr,+971 50 765 4321,,en,,yes,,,\n"
    "Bad phone,12,,,,,,,\n"
    "Bad budget,0551112233,,,,,,lots,\n"
    "No contact,,,,,,,,\n"
    "Huda again,+966501234567,,,new,,,,\n"
    '"Sami, Jr.",0559998877,sami@example.com,xx,,,,,\n'
)
MAPPING = {
    "Full name": "name",
    "Mobile": "phone",
    "E-mail": "email",
    "Lang": "language",
    "Labels": "tags",
    "Unsubscribed": "opted_out",
    "Employer": "company",
    "Budget": "attributes.budget",
}


async def upload_csv(client: httpx.AsyncClient, text: str) -> str:
    uploaded = await client.post("/api/media", files={"data": ("people.csv", text.encode(), "text/csv")})
    assert uploaded.status_code == 201, uploaded.text
    return uploaded.json()["id"]


async def finished(client: httpx.AsyncClient, import_id: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        job = (await client.get(f"/api/crm/imports/{import_id}")).json()
        return job if job["status"] in ("done", "failed") else None

    return await eventually(done, within=300)


async def test_a_csv_file_becomes_customers_and_its_bad_rows_are_reported(
    hub: RunningHub, organization: Organization
) -> None:
    screen = await connect(hub, organization.members["manager"].token)
    async with hub.client(organization.members["manager"].token, language="en") as client:
        await client.post("/api/crm/attributes", json={"key": "budget", "label": "Budget", "kind": "number"})
        async with hub.client(organization.admin.token) as admin:
            await admin.patch("/api/settings/organization", json={"default_region": "SA"})
        media_id = await upload_csv(client, CSV)
        started = await client.post("/api/crm/imports", json={"media_id": media_id, "mapping": MAPPING})
        assert started.status_code == 202, started.text
        job = await finished(client, started.json()["id"])
        assert job["status"] == "done"
        assert (job["rows"], job["created"], job["updated"], job["skipped"], job["failed"]) == (7, 2, 0, 1, 4)
        assert [(e["row"], e["field"]) for e in job["errors"]] == [
            (4, "phone"),
            (5, "attributes.budget"),
            (6, "phone"),
            (8, "language"),
        ]
        assert job["errors"][1]["reason"] == "This value does not fit the attribute's type (number)."
        people = {c["name"]: c for c in (await client.get("/api/crm/customers")).json()["items"]}
        assert set(people) == {"Huda", "Badr"}
        huda = people["Huda"]
        assert huda["phone"] == "+966501234567"
        assert huda["tags"] == ["riyadh", "vip"]
        assert huda["attributes"] == {"budget": 5000}
        assert huda["company_id"] is not None
        assert people["Badr"]["opted_out"] is True
        assert people["Badr"]["phone"] == "+971507654321"

        # The same file again, updating: the existing people change, nobody is added twice.
        again = await client.post(
            "/api/crm/imports", json={"media_id": media_id, "mapping": MAPPING, "on_duplicate": "update"}
        )
        job = await finished(client, again.json()["id"])
        assert (job["created"], job["updated"], job["skipped"]) == (0, 3, 0)
        huda = (await client.get(f"/api/crm/customers/{huda['id']}")).json()
        assert huda["name"] == "Huda again"  # the file's last word
        assert huda["tags"] == ["new", "riyadh", "vip"]

        for body, field in (
            ({"media_id": media_id, "mapping": {"Full name": "name"}}, "mapping"),
            ({"media_id": media_id, "mapping": {"Budget": "attributes.colour"}}, "mapping"),
            ({"media_id": media_id, "mapping": {"Mobile": "phone", "E-mail": "phone"}}, "mapping"),
            ({"media_id": media_id, "mapping": {"Mobile": "password"}}, "mapping[...]"),
        ):
            refused = await client.post("/api/crm/imports", json=body)
            assert refused.status_code == 400, body
            assert refused.json()["errors"][0]["field"] == field, refused.json()
        missing = await client.post(
            "/api/crm/imports", json={"media_id": media_id, "mapping": {"Phone number": "phone"}}
        )
        job = await finished(client, missing.json()["id"])
        assert job["status"] == "failed"
        assert job["errors"][0]["reason"] == "The file has no column Phone number."
    progress = await eventually(lambda: [p for p in screen.named("importProgress") if p["status"] == "done"])
    assert progress[0]["created"] == 2
    await screen.client.disconnect()
    other = await register(hub)
    async with hub.client(other.admin.token) as client:
        assert (await client.get(f"/api/crm/imports/{started.json()['id']}")).status_code == 404
        refused = await client.post("/api/crm/imports", json={"media_id": media_id, "mapping": MAPPING})
        assert refused.json()["errors"][0]["field"] == "media_id"


@pytest.mark.slow
async def test_a_hundred_thousand_rows(hub: RunningHub, organization: Organization) -> None:
    rows = 100_000
    lines = ["name,phone,tags"] + [
        f"Customer {n},+9665{n:08d},{'vip' if n % 10 == 0 else 'lead'}" for n in range(rows)
    ]
    async with hub.client(organization.admin.token) as client:
        media_id = await upload_csv(client, "\n".join(lines) + "\n")
        started = await client.post(
            "/api/crm/imports",
            json={"media_id": media_id, "mapping": {"name": "name", "phone": "phone", "tags": "tags"}},
        )
        job = await finished(client, started.json()["id"])
        assert (job["status"], job["rows"], job["created"], job["failed"]) == ("done", rows, rows, 0)
        vip = (await client.post("/api/crm/segments/preview", json={"tags": ["vip"]})).json()
        assert vip == {"matching": rows // 10, "sendable": rows // 10, "opted_out": 0}
        found = (await client.get("/api/crm/customers", params={"q": "Customer 99999"})).json()["items"]
        assert [c["phone"] for c in found] == ["+966500099999"]
