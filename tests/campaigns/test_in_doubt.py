"""Campaign sends in doubt: every send is over by its time to finish (`HUB_SEND_SECONDS` after its
slot), a send cut off then is settled from the channel's record, and an outcome counts only over
the claim it came from, however many writers settle it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from campaigns import sending
from campaigns.models import Campaign, CampaignRecipient
from channels.models import Channel
from crm.models import Activity
from hub.models import UsageCounter
from tests.conftest import Organization, RunningHub, eventually, make_settings, register, start_hub
from tests.helpers.campaigns import (
    CountingReceiver,
    api_channel,
    customers,
    fast_pacing,
    finished,
    ready_campaign,
    serve_receiver,
    start_campaign,
)


@pytest.fixture(params=["sqlite", "postgres"])
async def quick_hub(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunningHub]:
    """A hub whose sends are over within two seconds."""
    environment = {"HUB_SEND_SECONDS": "2"}
    if request.param == "postgres":
        environment |= {
            "DATABASE_URL": request.getfixturevalue("fresh_database"),
            "REDIS_URL": request.getfixturevalue("redis_url"),
            "HUB_MIGRATE_ON_START": "true",
        }
    hub = await start_hub(make_settings(tmp_path, **environment), kind=request.param, in_process_worker=True)
    yield hub
    await hub.stop()


async def _start(
    hub: RunningHub, organization: Organization, receiver: CountingReceiver, people: int, prefix: str
) -> dict[str, Any]:
    channel = await api_channel(hub, organization, receiver)
    await fast_pacing(hub, organization.admin.token, channel["id"], min_gap_seconds=0, jitter_seconds=0)
    made = await customers(
        hub, organization, [{"name": f"P{i}", "phone": f"{prefix}{i:03d}"} for i in range(people)]
    )
    campaign = await ready_campaign(
        hub,
        organization.admin.token,
        {
            "name": "In doubt",
            "channel_ids": [channel["id"]],
            "template": {"ar": "مرحبا {{name}}"},
            "audience": {"customer_ids": [p["id"] for p in made]},
        },
    )
    await start_campaign(hub, organization.admin.token, campaign["id"])
    return campaign


async def test_a_send_that_outlives_its_time_is_given_up_and_settled_from_the_record(
    quick_hub: RunningHub,
) -> None:
    organization = await register(quick_hub)
    # The system keeps each message on arrival but answers only after 6 s: every send is cut off
    # at 2 s, in doubt, and its record says it arrived.
    slow = CountingReceiver(delay=(6, 6))
    runner = await serve_receiver(slow)
    try:
        campaign = await _start(quick_hub, organization, slow, 3, "+966581100")
        done = await finished(quick_hub, organization.admin.token, campaign["id"], within=60)
        async with quick_hub.client(organization.admin.token) as client:
            results = (await client.get(f"/api/campaigns/{campaign['id']}/results")).json()
        # A sweep long after finds nothing left to settle.
        assert await sending.settle_in_doubt(quick_hub.runtime) == 0
    finally:
        await runner.cleanup()
    assert done["status"] == "completed"
    assert set(slow.ids().values()) == {1}
    assert slow.lookups == 3  # each send was given up and looked up, not answered
    counts = results["counts"]
    assert (counts["sent"], counts["unknown"], counts["sending"], counts["pending"]) == (3, 0, 0, 0)
    assert done["sent"] == 3


async def test_an_outcome_counts_once_over_its_own_claim(quick_hub: RunningHub) -> None:
    """The sweep and the sender both settle one send: the recipient, the counters, the timeline
    and the month's usage change once."""
    hub = quick_hub
    runtime = hub.runtime
    organization = await register(hub)
    hanging = CountingReceiver(delay=(1.5, 1.5))
    runner = await serve_receiver(hanging)
    try:
        campaign = await _start(hub, organization, hanging, 1, "+966581200")
        campaign_id = uuid.UUID(campaign["id"])

        async def under_way() -> CampaignRecipient | None:
            async with runtime.db.session(organization.id) as session:
                return await session.scalar(
                    select(CampaignRecipient).where(
                        CampaignRecipient.campaign_id == campaign_id, CampaignRecipient.status == "sending"
                    )
                )

        recipient = await eventually(under_way, within=20)
        await eventually(lambda: len(hanging.messages) == 1, within=10)
        # What the sweep does with a send it takes for over: the record decides, over the claim read.
        async with runtime.db.session(organization.id) as session:
            channel = await session.get_one(Channel, recipient.channel_id)
        claim = sending.Claim(
            recipient.id,
            recipient.campaign_id,
            recipient.customer_id,
            recipient.phone,
            recipient.text or "",
            None,
            claimed_by=recipient.claimed_by,
        )
        settled = await sending.resolve(channel, claim, reason="test")
        assert settled.status == "sent"
        stale = sending.Outcome(**{**settled.__dict__, "claimed_by": "a-claim-long-gone"})
        for outcome in (settled, settled, stale):  # twice over its claim, once over another
            async with runtime.db.session(organization.id) as session:
                await sending.record_outcomes(session, [outcome])
        # The sender's own outcome comes when the answer does, and changes nothing either.
        done = await finished(hub, organization.admin.token, campaign["id"], within=30)
        await asyncio.sleep(2.5)  # past the answer and a flush of the sender's outcomes
    finally:
        await runner.cleanup()
    assert done["status"] == "completed"
    async with runtime.db.session(organization.id) as session:
        found = await session.get_one(Campaign, campaign_id, populate_existing=True)
        timeline = await session.scalar(
            select(func.count()).select_from(Activity).where(Activity.kind == "campaign_message")
        )
        usage = await session.scalar(
            select(func.sum(UsageCounter.quantity)).where(UsageCounter.metric == "messages_sent")
        )
        status = await session.scalar(
            select(CampaignRecipient.status).where(CampaignRecipient.id == recipient.id)
        )
    assert status == "sent"
    assert (found.sent, found.failed, found.unknown) == (1, 0, 0)
    assert timeline == 1
    assert usage == 1
    assert len(hanging.messages) == 1
