"""The CRM's socket events, each by its contract: the action that sends it, exactly who receives it,
and its payload applied to what the console had fetched, which must equal a fresh fetch."""

from __future__ import annotations

from tests.conftest import Organization, RunningHub, eventually
from tests.helpers.pushes import CapturedPushes

CRM_READERS = {"admin", "manager", "member", "agent", "agent_b"}


async def test_lead_created(
    hub: RunningHub, organization: Organization, captured_pushes: CapturedPushes
) -> None:
    async with hub.client(organization.members["manager"].token) as manager:
        before = (await manager.get("/api/crm/customers")).json()["items"]
        async with hub.client(language="en") as public:
            posted = await public.post(
                f"/api/public/{organization.slug}/leads",
                json={
                    "name": "Mona Saleh",
                    "email": "mona@tamr.sa",
                    "company": "Tamr Trading",
                    "source": "pricing",
                },
            )
        assert posted.status_code == 202, posted.text
        # Who works the leads (those who change the CRM), not every reader of it.
        data = await captured_pushes.expect("leadCreated", to={"admin", "manager"})
        assert (data["name"], data["company"], data["source"], data["existing"]) == (
            "Mona Saleh",
            "Tamr Trading",
            "pricing",
            False,
        )
        customer = (await manager.get(f"/api/crm/customers/{data['customerId']}")).json()
        assert customer["name"] == data["name"]
        deal = (await manager.get(f"/api/crm/deals/{data['dealId']}")).json()
        assert deal["customer_id"] == data["customerId"]
        # The console reloads its list on the event: the new customer is what it gains.
        after = (await manager.get("/api/crm/customers")).json()["items"]
        assert {c["id"] for c in after} - {c["id"] for c in before} == {data["customerId"]}


async def test_deal_updated(
    hub: RunningHub, organization: Organization, captured_pushes: CapturedPushes
) -> None:
    async with hub.client(organization.members["manager"].token) as manager:
        customer = (await manager.post("/api/crm/customers", json={"name": "Faisal"})).json()
        deal = (
            await manager.post("/api/crm/deals", json={"title": "40 trackers", "customer_id": customer["id"]})
        ).json()
        stages = (await manager.get("/api/crm/sales-stages")).json()
        target = next(
            stage
            for stage in stages
            if stage["id"] != deal["stage_id"] and stage.get("outcome", "open") == "open"
        )
        captured_pushes.forget()
        moved = await manager.patch(f"/api/crm/deals/{deal['id']}", json={"stage_id": target["id"]})
        assert moved.status_code == 200, moved.text
        data = await captured_pushes.expect("dealUpdated", to=CRM_READERS)
        assert (data["dealId"], data["stageId"]) == (deal["id"], target["id"])
        # The board moves the card to its stage; the card is the deal as read afresh.
        assert data["deal"] == (await manager.get(f"/api/crm/deals/{deal['id']}")).json()


async def test_import_progress(
    hub: RunningHub, organization: Organization, captured_pushes: CapturedPushes
) -> None:
    async with hub.client(organization.members["manager"].token) as manager:
        uploaded = await manager.post(
            "/api/media",
            files={"data": ("people.csv", b"Name,Phone\nHuda,+966501234567\nBad,12\n", "text/csv")},
        )
        assert uploaded.status_code == 201, uploaded.text
        started = await manager.post(
            "/api/crm/imports",
            json={"media_id": uploaded.json()["id"], "mapping": {"Name": "name", "Phone": "phone"}},
        )
        assert started.status_code == 202, started.text
        job_id = started.json()["id"]
        # Only whoever started the import follows it.
        data = await captured_pushes.expect(
            "importProgress", to={"manager"}, where=lambda d: d["status"] in ("done", "failed")
        )

        async def done() -> dict[str, object] | None:
            job = (await manager.get(f"/api/crm/imports/{job_id}")).json()
            return job if job["status"] == data["status"] else None

        job = await eventually(done)
        assert data["importId"] == job_id
        assert {key: data[key] for key in ("status", "rows", "created", "updated", "skipped", "failed")} == {
            key: job[key] for key in ("status", "rows", "created", "updated", "skipped", "failed")
        }
        assert (job["created"], job["failed"]) == (1, 1)
