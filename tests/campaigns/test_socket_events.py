"""The campaigns' socket events, each by its contract: the action that sends it, exactly who
receives it (who reads campaigns: admins and managers, never agents, members or another
organization), and its payload applied to what the console had fetched, which must equal a fresh
fetch."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Organization, RunningHub
from tests.helpers.campaigns import (
    CountingReceiver,
    api_channel,
    customers,
    fast_pacing,
    finished,
    numbers,
    ready_campaign,
)
from tests.helpers.pushes import CapturedPushes

READERS = {"admin", "manager"}
# What each event carries, by the name the campaign's detail gives it.
PROGRESS_FIELDS = {
    "total": "total",
    "sent": "sent",
    "failed": "failed",
    "skipped": "skipped",
    "unknown": "unknown",
}


async def campaign_of(client: httpx.AsyncClient, campaign_id: str) -> dict[str, Any]:
    answer = await client.get(f"/api/campaigns/{campaign_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def apply_update(campaign: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """What the console's campaign page does with `campaignUpdated`."""
    changed = {**campaign, "status": data["status"], "pause_reason": data.get("reason")}
    if "total" in data:
        changed["total"] = data["total"]
    if "audience" in data:
        changed["audience_status"], changed["audience_report"] = data["audienceStatus"], data["audience"]
    return changed


async def campaign_of_customers(
    hub: RunningHub, organization: Organization, receiver: CountingReceiver, prefix: str, count: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    channel = await api_channel(hub, organization, receiver)
    await fast_pacing(hub, organization.admin.token, channel["id"], min_gap_seconds=0, jitter_seconds=0)
    people = await customers(hub, organization, numbers(prefix, count))
    return channel, people


async def test_campaign_updated(
    hub: RunningHub, organization: Organization, receiver: CountingReceiver, captured_pushes: CapturedPushes
) -> None:
    channel, people = await campaign_of_customers(hub, organization, receiver, "81", 3)
    async with hub.client(organization.members["manager"].token) as manager:
        created = await manager.post(
            "/api/campaigns",
            json={
                "name": "Eid offers",
                "channel_ids": [channel["id"]],
                "template": {"ar": "أهلا {{name}}", "en": "Hello {{name}}"},
                "audience": {"customer_ids": [p["id"] for p in people]},
            },
        )
        assert created.status_code == 201, created.text
        draft = created.json()
        # Its audience counted, in the background: the count and the report.
        counted = await captured_pushes.expect("campaignUpdated", to=READERS, where=lambda d: "total" in d)
        assert counted["campaignId"] == draft["id"]
        assert counted["total"] == 3
        fresh = await campaign_of(manager, draft["id"])
        assert counted["audienceStatus"] == "ready"
        assert apply_update(draft, counted) == fresh

        # Paused by hand, before any send: the status and its reason.
        await manager.patch(f"/api/campaigns/pacing/{channel['id']}", json={"min_gap_seconds": 30})
        before = await campaign_of(manager, draft["id"])
        captured_pushes.forget()
        assert (await manager.post(f"/api/campaigns/{draft['id']}/start")).status_code == 200
        running = await captured_pushes.expect("campaignUpdated", to=READERS)
        assert running == {"campaignId": draft["id"], "status": "running"}
        captured_pushes.forget()
        assert (await manager.post(f"/api/campaigns/{draft['id']}/pause")).status_code == 200
        paused = await captured_pushes.expect("campaignUpdated", to=READERS)
        assert (paused["status"], paused["reason"]) == ("paused", "manual")
        fresh = await campaign_of(manager, draft["id"])
        shown = apply_update(apply_update(before, running), paused)
        assert {key: shown[key] for key in ("status", "pause_reason", "total")} == {
            key: fresh[key] for key in ("status", "pause_reason", "total")
        }
        assert (await manager.post(f"/api/campaigns/{draft['id']}/cancel")).status_code == 200
        cancelled = await captured_pushes.expect(
            "campaignUpdated", to=READERS, where=lambda d: d["status"] == "cancelled"
        )
        assert apply_update(fresh, cancelled)["status"] == (await campaign_of(manager, draft["id"]))["status"]


async def test_campaign_progress_and_completed(
    hub: RunningHub, organization: Organization, receiver: CountingReceiver, captured_pushes: CapturedPushes
) -> None:
    channel, people = await campaign_of_customers(hub, organization, receiver, "82", 5)
    campaign = await ready_campaign(
        hub,
        organization.admin.token,
        {
            "name": "Restock",
            "channel_ids": [channel["id"]],
            "template": {"ar": "وصل {{name}}", "en": "Back in stock, {{name}}"},
            "audience": {"customer_ids": [p["id"] for p in people]},
        },
    )
    async with hub.client(organization.admin.token) as admin:
        captured_pushes.forget()
        assert (await admin.post(f"/api/campaigns/{campaign['id']}/start")).status_code == 200
        ended = await finished(hub, organization.admin.token, campaign["id"])
        assert ended["status"] == "completed"
        completed = await captured_pushes.expect("campaignCompleted", to=READERS)
        last = await captured_pushes.expect(
            "campaignProgress", to=READERS, where=lambda d: d["current"] == d["total"]
        )
        fresh = await campaign_of(admin, campaign["id"])
        # The last progress the console shows is the campaign's counts as read afresh.
        assert {ours: last[theirs] for theirs, ours in PROGRESS_FIELDS.items()} == {
            ours: fresh[ours] for ours in PROGRESS_FIELDS.values()
        }
        assert last["remaining"] == 0
        assert last["current"] == 5
        # And the results it shows on completion are the results read afresh.
        assert completed["campaignId"] == campaign["id"]
        assert completed["results"] == (await admin.get(f"/api/campaigns/{campaign['id']}/results")).json()
