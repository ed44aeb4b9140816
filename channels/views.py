"""What the API carries of channels and WhatsApp profiles: a profile's state and QR code come
from its running session."""

from __future__ import annotations

from typing import Any

from litestar import Request

from channels.models import Channel
from channels.schemas import (
    ChannelOut,
    ProfileOut,
    QrOut,
)
from channels.whatsapp.session import ProfileSession, qr_svg
from hub.controllers import public_url


def channel_out(request: Request[Any, Any, Any], channel: Channel) -> ChannelOut:
    inbound, receipts = channel_urls(request, channel) if channel.kind == "api" else (None, None)
    return ChannelOut(
        id=channel.id,
        type=channel.kind,
        name=channel.name,
        state=channel.state,
        last_error=channel.last_error,
        inbound_url=inbound,
        receipts_url=receipts,
        webhook_url=channel.config.get("webhook_url"),
        created_at=channel.created_at,
    )


def profile_out(profile: Channel, running: ProfileSession | None = None) -> ProfileOut:
    code = running.qr_code if running is not None and running.state == "qr" else None
    return ProfileOut(
        id=profile.id,
        name=profile.name,
        state=running.state if running is not None else profile.state,
        last_error=profile.last_error,
        phone=profile.config.get("phone"),
        paired=bool(profile.config.get("paired")),
        qr=QrOut(code=code, svg=qr_svg(code)) if code else None,
        state_changed_at=profile.state_changed_at,
    )


def channel_urls(request: Request[Any, Any, Any], channel: Channel) -> tuple[str, str]:
    base = f"{public_url(request)}/api/channels/{channel.id}"
    return f"{base}/inbound", f"{base}/receipts"
