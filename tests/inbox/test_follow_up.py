"""Work promised after an inbound message is acknowledged survives the process: a ticket waiting on
the customer is reopened and a campaign reply is marked even when the process that stored the
message died the moment it committed, before the work that follows a message ran."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from campaigns.models import CampaignRecipient
from inbox import services
from tests.conftest import RunningHub, child_environment, eventually, make_settings, register, start_hub
from tests.helpers.campaigns import (
    CountingReceiver,
    api_channel,
    fast_pacing,
    poster,
    run_campaign,
    serve_receiver,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def scaled_hub(tmp_path: Path, fresh_database: str, redis_url: str) -> AsyncIterator[RunningHub]:
    settings = make_settings(
        tmp_path, DATABASE_URL=fresh_database, REDIS_URL=redis_url, HUB_MIGRATE_ON_START="true"
    )
    hub = await start_hub(settings, kind="postgres", in_process_worker=True)
    yield hub
    await hub.stop()


async def _ticket_status(hub: RunningHub, token: str, ticket_id: str) -> str:
    async with hub.client(token) as client:
        return str((await client.get(f"/api/tickets/{ticket_id}")).json()["status"])


async def test_a_reply_stored_by_a_process_that_died_at_once_still_reopens_and_marks(
    scaled_hub: RunningHub,
) -> None:
    hub = scaled_hub
    organization = await register(hub)
    token = organization.admin.token
    receiver = CountingReceiver()
    runner = await serve_receiver(receiver)
    try:
        channel = await api_channel(hub, organization, receiver)
        phone = "+966581300001"
        first = (await poster(channel).send(external_id="w-1", **{"from": phone}, text="Hello")).json()
        conversation_id = first["conversation_id"]
        async with hub.client(token) as client:
            conversation = (await client.get(f"/api/inbox/conversations/{conversation_id}")).json()
            customer_id = conversation["customer"]["id"]
            ticket = (
                await client.post(
                    "/api/tickets", json={"title": "Where is my order", "conversation_id": conversation_id}
                )
            ).json()
            waiting = await client.patch(
                f"/api/tickets/{ticket['id']}", json={"status": "waiting_on_customer"}
            )
            assert waiting.status_code == 200, waiting.text
        await fast_pacing(hub, token, channel["id"], min_gap_seconds=0, jitter_seconds=0)
        campaign, done = await run_campaign(
            hub,
            token,
            {
                "name": "Follow-up",
                "channel_ids": [channel["id"]],
                "template": {"ar": "هل وصل طلبك؟"},
                "audience": {"customer_ids": [customer_id]},
            },
        )
        assert done["status"] == "completed"

        # The customer answers; the process that stores it dies the moment it is committed.
        crashed = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "tests.inbox.crash_after_inbound",
                str(organization.id),
                channel["id"],
                phone,
                "w-2",
                "Not yet",
            ],
            cwd=ROOT,
            env=child_environment(hub.settings),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert crashed.returncode == 17, crashed.stderr[-2000:]
        # Stored, but what was to follow it died with the process.
        async with hub.client(token) as client:
            messages = (await client.get(f"/api/inbox/conversations/{conversation_id}/messages")).json()
        assert "Not yet" in [m["text"] for m in messages["items"]]
        assert await _ticket_status(hub, token, ticket["id"]) == "waiting_on_customer"

        async def replied_at() -> object:
            async with hub.runtime.db.session(organization.id) as session:
                return await session.scalar(
                    select(CampaignRecipient.replied_at).where(
                        CampaignRecipient.campaign_id == uuid.UUID(campaign["id"])
                    )
                )

        assert await replied_at() is None

        # A ticket put to wait after the customer wrote is not reopened by what came before.
        async with hub.client(token) as client:
            later = (
                await client.post(
                    "/api/tickets", json={"title": "Invoice", "conversation_id": conversation_id}
                )
            ).json()
            await client.patch(f"/api/tickets/{later['id']}", json={"status": "waiting_on_customer"})

        # The sweep (every 15 s, for messages 30 s old; here at once) catches up, durably.
        assert await services.publish_who_wrote(hub.runtime, grace=timedelta(0)) >= 1

        async def reopened() -> bool:
            return await _ticket_status(hub, token, ticket["id"]) == "open"

        await eventually(reopened, within=20)
        await eventually(replied_at, within=20)
        assert await _ticket_status(hub, token, later["id"]) == "waiting_on_customer"
        async with hub.client(token) as client:
            timeline = (await client.get(f"/api/crm/customers/{customer_id}/activity")).json()["items"]
        assert [e["kind"] for e in timeline].count("campaign_replied") == 1
        # Run again, it publishes nothing it published before.
        assert await services.publish_who_wrote(hub.runtime, grace=timedelta(0)) == 0
    finally:
        await runner.cleanup()
