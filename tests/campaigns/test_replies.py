"""Replies to campaign messages, marked for many customers at once (the inbox's hint batches them,
and the durable catch-up covers 15 s at a time): each customer by their own moment of writing."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from campaigns import sending
from campaigns.models import CampaignRecipient
from tests.conftest import Organization, RunningHub
from tests.helpers.campaigns import (
    CountingReceiver,
    api_channel,
    customers,
    fast_pacing,
    numbers,
    run_campaign,
)


async def test_each_customer_in_a_batch_is_judged_by_their_own_moment(
    hub: RunningHub, organization: Organization, receiver: CountingReceiver
) -> None:
    channel = await api_channel(hub, organization, receiver)
    await fast_pacing(hub, organization.admin.token, channel["id"], min_gap_seconds=0, jitter_seconds=0)
    early, late, silent = await customers(hub, organization, numbers("83", 3))
    campaign, done = await run_campaign(
        hub,
        organization.admin.token,
        {
            "name": "Batch replies",
            "channel_ids": [channel["id"]],
            "template": {"ar": "مرحبا", "en": "Hello"},
            "audience": {"customer_ids": [early["id"], late["id"], silent["id"]]},
        },
    )
    assert done["status"] == "completed"
    async with hub.runtime.db.session(organization.id) as session:
        sent = dict(
            (
                await session.execute(
                    select(CampaignRecipient.customer_id, CampaignRecipient.sent_at).where(
                        CampaignRecipient.campaign_id == uuid.UUID(campaign["id"])
                    )
                )
            ).all()
        )
    early_id, late_id = uuid.UUID(early["id"]), uuid.UUID(late["id"])
    assert sent[early_id] is not None
    assert sent[late_id] is not None
    # One wrote before the campaign reached them (no reply to it), the other after.
    written = {early_id: sent[early_id] - timedelta(seconds=5), late_id: sent[late_id] + timedelta(seconds=5)}
    for _ in range(2):  # marking again changes nothing
        await sending.customers_replied(hub.runtime, organization.id, written)
    async with hub.runtime.db.session(organization.id) as session:
        replied = dict(
            (
                await session.execute(
                    select(CampaignRecipient.customer_id, CampaignRecipient.replied_at).where(
                        CampaignRecipient.campaign_id == uuid.UUID(campaign["id"])
                    )
                )
            ).all()
        )
    assert replied == {early_id: None, late_id: written[late_id], uuid.UUID(silent["id"]): None}
    async with hub.client(organization.admin.token) as client:
        timeline = (await client.get(f"/api/crm/customers/{late['id']}/activity")).json()["items"]
        assert [e["kind"] for e in timeline].count("campaign_replied") == 1
        results = (await client.get(f"/api/campaigns/{campaign['id']}/results")).json()
    assert results["counts"]["replied"] == 1
