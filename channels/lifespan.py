"""What channels do when a web process starts and stops: reconnect paired WhatsApp profiles."""

from __future__ import annotations

import structlog
from sqlalchemy import select

from channels.models import Channel
from channels.whatsapp.session import store_path
from channels.whatsapp.sessions import sessions_of
from hub.runtime import Runtime

log = structlog.get_logger(__name__)


async def start(runtime: Runtime) -> None:
    """Profiles that were paired reconnect from their stored session, without a new QR."""
    async with runtime.db.system_session() as session:
        profiles = list(await session.scalars(select(Channel).where(Channel.kind == "whatsapp")))
    for profile in profiles:
        if profile.config.get("paired") and store_path(runtime, profile.id).exists():
            held = await sessions_of(runtime).ensure(profile)
            log.info("whatsapp profile reconnecting", profile=str(profile.id), here=held is not None)


async def stop(runtime: Runtime) -> None:
    await sessions_of(runtime).stop_all()
