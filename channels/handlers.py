"""Loaded at start in every process: registers the adapter of each channel kind, and counts the
numbers and API channels an organization holds for billing's limits."""

from __future__ import annotations

from sqlalchemy import func, select

import channels.api
import channels.whatsapp.adapter  # noqa: F401 - registers the WhatsApp adapter
from channels.models import Channel
from hub.billing.hooks import counts_held
from hub.db import HubAsyncSession


async def _channels_of_kind(session: HubAsyncSession, kind: str) -> int:
    return int(
        await session.scalar(select(func.count()).select_from(Channel).where(Channel.kind == kind)) or 0
    )


@counts_held("whatsapp_profiles")
async def whatsapp_profiles(session: HubAsyncSession) -> int:
    return await _channels_of_kind(session, "whatsapp")


@counts_held("api_channels")
async def api_channels(session: HubAsyncSession) -> int:
    return await _channels_of_kind(session, "api")
