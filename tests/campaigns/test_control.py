"""Starting, pausing, resuming and cancelling; pausing by itself; who hears the progress; bad input."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from campaigns.models import CampaignRecipient
from channels.models import Channel
from hub.outbound import GENERIC_FAILURE
from tests.conftest import Organization, RunningHub, eventually, register
from tests.helpers.campaigns import (
    CountingReceiver,
    api_channel,
    customers,
    fast_pacing,
    finished,
    numbers,
    ready_campaign,
)
from tests.helpers.sockets import connect


async def campaign_for(
    hub: RunningHub,
    organization: Organization,
    receiver: CountingReceiver,
    prefix: str,
    count: int,
    **extra: Any,
) -> tuple[dict[str, Any], dict[str, Any]]:
    channel = await api_channel(hub, organization, receiver)
    people = await customers(hub, organization, numbers(prefix, count))
    campaign = await ready_campaign(
        hub,
        organization.admin.token,
        {
            "name": f"Campaign {prefix}",
            "channel_ids": [channel["id"]],
            "template": {"ar": "{مرحبا|أهلا} {{name}}", "en": "Hello {{name}}"},
            "audience": {"customer_ids": [p["id"] for p in people]},
            **extra,
        },
    )
    return channel, campaign


async def claimed(hub: RunningHub, organization: Organization, campaign_id: str) -> int:
    async with hub.client(organization.admin.token) as client:
        counts = (await client.get(f"/api/campaigns/{campaign_id}/results")).json()["counts"]
    return int(counts["sending"] + counts["sent"] + counts["failed"] + counts["unknown"] + counts["skipped"])


async def test_pause_stops_new_sends_and_resume_goes_on_where_it_stopped(
    hub: RunningHub, organization: Organization, receiver: CountingReceiver
) -> None:
    channel, campaign = await campaign_for(hub, organization, receiver, "71", 12)
    await fast_pacing(hub, organization.admin.token, channel["id"], min_gap_seconds=0.25, jitter_seconds=0)
    token = organization.members["manager"].token
    async with hub.client(token) as client:
        assert (await client.post(f"/api/campaigns/{campaign['id']}/start")).status_code == 200
        await eventually(lambda: len(receiver.messages) >= 3, within=20)
        paused = await client.post(f"/api/campaigns/{campaign['id']}/pause")
        assert paused.status_code == 200, paused.text
        assert paused.json()["status"] == "paused"
        assert paused.json()["pause_reason"] == "manual"
        assert paused.json()["pause_message"]  # shown in the caller's language
        begun = await claimed(hub, organization, campaign["id"])
        await eventually(lambda: len(receiver.messages) == begun, within=10)  # what had begun arrives
        await asyncio.sleep(1.2)
        assert await claimed(hub, organization, campaign["id"]) == begun  # and nothing new begins
        assert len(receiver.messages) == begun < 12
        again = await client.post(f"/api/campaigns/{campaign['id']}/pause")
        assert again.status_code == 409
        resumed = await client.post(f"/api/campaigns/{campaign['id']}/resume")
        assert resumed.status_code == 200, resumed.text
    done = await finished(hub, token, campaign["id"])
    assert done["status"] == "completed"
    assert done["sent"] == 12
    assert sorted(receiver.ids().values()) == [1] * 12
    # Gaps between sends hold on the channel: claims are at least the gap apart.
    async with hub.runtime.db.session(organization.id) as session:
        moments = sorted(
            await session.scalars(
                select(CampaignRecipient.claimed_at).where(
                    CampaignRecipient.campaign_id == uuid.UUID(campaign["id"])
                )
            )
        )
    assert all(later - earlier >= timedelta(seconds=0.25) for earlier, later in itertools.pairwise(moments))


async def test_cancel_keeps_the_rest_pending_and_a_cancelled_campaign_cannot_resume(
    hub: RunningHub, organization: Organization, receiver: CountingReceiver
) -> None:
    channel, campaign = await campaign_for(hub, organization, receiver, "72", 8)
    await fast_pacing(hub, organization.admin.token, channel["id"], min_gap_seconds=0.3, jitter_seconds=0)
    async with hub.client(organization.admin.token) as client:
        assert (await client.post(f"/api/campaigns/{campaign['id']}/start")).status_code == 200
        await eventually(lambda: len(receiver.messages) >= 2, within=20)
        cancelled = await client.post(f"/api/campaigns/{campaign['id']}/cancel")
        assert cancelled.json()["status"] == "cancelled"
        refused = await client.post(f"/api/campaigns/{campaign['id']}/resume")
        assert refused.status_code == 409
        assert refused.json()["errors"][0]["field"] == "status"
        await asyncio.sleep(1.0)
        counts = (await client.get(f"/api/campaigns/{campaign['id']}/results")).json()["counts"]
    assert counts["pending"] > 0
    assert counts["sent"] == len(receiver.messages) < 8


async def test_failures_past_the_threshold_pause_the_campaign_with_the_reason(
    hub: RunningHub, organization: Organization, receiver: CountingReceiver
) -> None:
    channel, campaign = await campaign_for(
        hub, organization, receiver, "73", 20, failure_window=5, failure_threshold=60
    )
    receiver.refuse = {f"+966573{i:06d}" for i in range(20)}  # the system refuses every number
    await fast_pacing(hub, organization.admin.token, channel["id"], min_gap_seconds=0.05, jitter_seconds=0)
    async with hub.client(organization.admin.token, language="en") as client:
        assert (await client.post(f"/api/campaigns/{campaign['id']}/start")).status_code == 200
        stopped = await finished(hub, organization.admin.token, campaign["id"])
        assert stopped["status"] == "paused"
        assert stopped["pause_reason"] == "failures"
        shown = (await client.get(f"/api/campaigns/{campaign['id']}")).json()
        results = (await client.get(f"/api/campaigns/{campaign['id']}/results")).json()
    assert "of the last 5 messages failed" in shown["pause_message"]
    assert 5 <= results["counts"]["failed"] < 20
    assert results["failures"][0]["reason"] == GENERIC_FAILURE


async def test_a_disconnected_profile_pauses_the_campaign(
    hub: RunningHub, organization: Organization, receiver: CountingReceiver
) -> None:
    channel, campaign = await campaign_for(hub, organization, receiver, "74", 10)
    await fast_pacing(hub, organization.admin.token, channel["id"], min_gap_seconds=0.3, jitter_seconds=0)
    async with hub.client(organization.admin.token, language="en") as client:
        assert (await client.post(f"/api/campaigns/{campaign['id']}/start")).status_code == 200
        await eventually(lambda: len(receiver.messages) >= 2, within=20)
        # What a WhatsApp session writes when its connection drops.
        async with hub.runtime.db.session(organization.id) as session:
            await session.execute(
                update(Channel).where(Channel.id == uuid.UUID(channel["id"])).values(state="disconnected")
            )
            await session.commit()
        stopped = await finished(hub, organization.admin.token, campaign["id"])
        assert stopped["status"] == "paused"
        assert stopped["pause_reason"] == "channel_disconnected"
        assert "Website" in stopped["pause_message"]
        refused = await client.post(f"/api/campaigns/{campaign['id']}/resume")
        assert refused.status_code == 409  # still disconnected
        async with hub.runtime.db.session(organization.id) as session:
            await session.execute(
                update(Channel).where(Channel.id == uuid.UUID(channel["id"])).values(state="ready")
            )
            await session.commit()
        assert (await client.post(f"/api/campaigns/{campaign['id']}/resume")).status_code == 200
    done = await finished(hub, organization.admin.token, campaign["id"])
    assert done["status"] == "completed"
    assert sorted(receiver.ids().values()) == [1] * 10


async def test_progress_reaches_only_managers_and_admins_a_few_times_a_second(
    hub: RunningHub, organization: Organization, receiver: CountingReceiver
) -> None:
    channel, campaign = await campaign_for(hub, organization, receiver, "75", 40)
    await fast_pacing(hub, organization.admin.token, channel["id"], min_gap_seconds=0.05, jitter_seconds=0)
    stranger = await register(hub, name="Other Shop")
    sockets = {role: await connect(hub, member.token) for role, member in organization.members.items()}
    outsider = await connect(hub, stranger.admin.token)
    began = time.monotonic()
    async with hub.client(organization.admin.token) as client:
        assert (await client.post(f"/api/campaigns/{campaign['id']}/start")).status_code == 200
    await finished(hub, organization.admin.token, campaign["id"])
    took = time.monotonic() - began
    await eventually(lambda: sockets["manager"].named("campaignCompleted"), within=10)
    for role in ("admin", "manager"):
        progress = sockets[role].named("campaignProgress")
        assert progress, role
        assert progress[-1]["current"] == progress[-1]["total"] == 40
        assert progress[-1]["sent"] == 40
        assert len(progress) <= took / 0.4 + 3  # throttled, whatever the send rate
        completed = sockets[role].named("campaignCompleted")
        assert completed[0]["campaignId"] == campaign["id"]
        assert completed[0]["results"]["counts"]["sent"] == 40
    for role in ("agent", "member"):
        assert not [name for name, _ in sockets[role].received if name.startswith("campaign")], role
    assert outsider.received == []
    for inbox in (*sockets.values(), outsider):
        await inbox.client.disconnect()


async def test_a_scheduled_campaign_starts_at_its_time(
    hub: RunningHub, organization: Organization, receiver: CountingReceiver
) -> None:
    channel, campaign = await campaign_for(hub, organization, receiver, "76", 3)
    await fast_pacing(hub, organization.admin.token, channel["id"], min_gap_seconds=0, jitter_seconds=0)
    at = datetime.now(UTC) + timedelta(seconds=3)
    async with hub.client(organization.admin.token) as client:
        started = await client.post(
            f"/api/campaigns/{campaign['id']}/start", json={"starts_at": at.isoformat()}
        )
        assert started.json()["status"] == "scheduled"
        assert not receiver.messages
    done = await finished(hub, organization.admin.token, campaign["id"], within=40)
    assert done["status"] == "completed"
    assert datetime.fromisoformat(done["started_at"]) >= at - timedelta(seconds=1)
    assert len(receiver.messages) == 3


async def test_outside_the_sending_window_nothing_goes_until_it_opens(
    hub: RunningHub, organization: Organization, receiver: CountingReceiver
) -> None:
    now = datetime.now(UTC)  # the organization keeps UTC
    opens, closes = (now + timedelta(hours=2)).strftime("%H:%M"), (now + timedelta(hours=4)).strftime("%H:%M")
    channel, campaign = await campaign_for(
        hub, organization, receiver, "77", 2, window_start=opens, window_end=closes
    )
    await fast_pacing(hub, organization.admin.token, channel["id"], min_gap_seconds=0, jitter_seconds=0)
    async with hub.client(organization.admin.token) as client:
        assert (await client.post(f"/api/campaigns/{campaign['id']}/start")).status_code == 200
        await asyncio.sleep(1.5)
        assert receiver.messages == []
        assert (await client.get(f"/api/campaigns/{campaign['id']}")).json()["status"] == "running"
        pacing = {p["channel_id"]: p for p in (await client.get("/api/campaigns/pacing")).json()}
    assert pacing[channel["id"]]["sent_today"] == 0


async def test_bad_input_is_refused_naming_the_problem(
    hub: RunningHub, organization: Organization, receiver: CountingReceiver
) -> None:
    channel = await api_channel(hub, organization, receiver)
    person = (await customers(hub, organization, numbers("78", 1)))[0]
    base = {
        "name": "Bad",
        "channel_ids": [channel["id"]],
        "template": {"ar": "مرحبا {{name}}"},
        "audience": {"customer_ids": [person["id"]]},
    }
    cases = [
        ({"template": {"ar": "مرحبا {{nickname}}"}}, "template.ar"),
        ({"template": {"en": "Hi {{name"}}, "template.en"),
        ({"audience": {"customer_ids": []}}, "audience.customer_ids"),
        ({"audience": {}}, "audience"),
        ({"starts_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat()}, "starts_at"),
        ({"channel_ids": [str(uuid.uuid4())]}, "channel_ids"),
        ({"window_start": "09:00"}, "window_end"),
        ({"failure_threshold": 0}, "failure_threshold"),
    ]
    async with hub.client(organization.admin.token, language="en") as client:
        for change, field in cases:
            answer = await client.post("/api/campaigns", json={**base, **change})
            assert answer.status_code == 400, (change, answer.text)
            assert field in answer.text, (change, answer.text)
        for rules, field in (({"min_gap_seconds": -1}, "min_gap_seconds"), ({"daily_cap": 0}, "daily_cap")):
            answer = await client.patch(f"/api/campaigns/pacing/{channel['id']}", json=rules)
            assert answer.status_code == 400, answer.text
            assert field in answer.text
        answer = await client.patch(
            f"/api/campaigns/pacing/{channel['id']}", json={"hourly_cap": 500, "daily_cap": 100}
        )
        assert answer.status_code == 400
        assert "hourly_cap" in answer.text
        # Another organization's campaign is not there at all.
        stranger = await register(hub, name="Elsewhere")
        made = await ready_campaign(hub, organization.admin.token, base)
        async with hub.client(stranger.admin.token) as other:
            assert (await other.get(f"/api/campaigns/{made['id']}")).status_code == 404
            assert (await other.post(f"/api/campaigns/{made['id']}/start")).status_code == 404
        # Agents and members have no campaigns.
        for role in ("agent", "member"):
            async with hub.client(organization.members[role].token) as limited:
                assert (await limited.get("/api/campaigns")).status_code == 403
        await fast_pacing(hub, organization.admin.token, channel["id"], min_gap_seconds=0, jitter_seconds=0)
        assert (await client.post(f"/api/campaigns/{made['id']}/start")).status_code == 200
        again = await client.post(f"/api/campaigns/{made['id']}/start")
        assert again.status_code == 409
        assert "status" in again.text


async def test_a_whatsapp_profile_has_safe_defaults_and_must_be_ready_to_start(
    hub: RunningHub, organization: Organization
) -> None:
    admin = organization.admin.token
    async with hub.client(admin, language="en") as client:
        profile = (await client.post("/api/whatsapp/profiles", json={"name": "Sales line"})).json()
        pacing = {p["channel_id"]: p for p in (await client.get("/api/campaigns/pacing")).json()}
        rules = pacing[profile["id"]]["rules"]
        assert (rules["min_gap_seconds"], rules["jitter_seconds"]) == (8.0, 4.0)
        assert (rules["hourly_cap"], rules["daily_cap"], rules["warmup_daily_caps"]) == (
            60,
            250,
            [50, 100, 150],
        )
        person = (await customers(hub, organization, numbers("79", 1)))[0]
    campaign = await ready_campaign(
        hub,
        admin,
        {
            "name": "Over WhatsApp",
            "channel_ids": [profile["id"]],
            "template": {"en": "Hello {{name}}"},
            "audience": {"customer_ids": [person["id"]]},
        },
    )
    async with hub.client(admin, language="en") as client:
        refused = await client.post(f"/api/campaigns/{campaign['id']}/start")
    assert refused.status_code == 409
    assert refused.json()["errors"][0]["field"] == "channel_ids"
    assert "Sales line is disconnected" in refused.json()["detail"]
