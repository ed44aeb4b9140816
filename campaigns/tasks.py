"""Background work of campaigns: building recipients, starting on time, one sender per channel,
and a sweep that misses nothing."""

from __future__ import annotations

import uuid

from campaigns import audience, lifecycle, sending
from hub.runtime import current
from hub.tasks import task


@task("campaigns.build_audience")
async def build_audience(organization_id: str, campaign_id: str) -> None:
    await audience.build_audience(current(), uuid.UUID(organization_id), uuid.UUID(campaign_id))


@task("campaigns.begin")
async def begin(organization_id: str, campaign_id: str) -> None:
    await lifecycle.begin_scheduled(current(), uuid.UUID(organization_id), uuid.UUID(campaign_id))


@task("campaigns.send_on_channel")
async def send_on_channel(organization_id: str, channel_id: str) -> None:
    await sending.ChannelSender(current(), uuid.UUID(organization_id), uuid.UUID(channel_id)).run()


@task("campaigns.sweep", every_seconds=10)
async def sweep() -> int:
    return await sending.sweep(current())
