"""What channels do when a web process starts and stops: reconnect paired WhatsApp profiles."""

from __future__ import annotations

from channels.whatsapp.sessions import sessions_of
from hub.runtime import Runtime


async def start(runtime: Runtime) -> None:
    """Profiles that were paired reconnect from their stored session, without a new QR; with
    Redis, those another process held are taken up here when it dies."""
    await sessions_of(runtime).start_all()


async def stop(runtime: Runtime) -> None:
    await sessions_of(runtime).stop_all()
