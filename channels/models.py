"""Channels: one row per connected number or integration of an organization."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, TenantMixin
from hub.models import JSONType


class Channel(Base, TenantMixin):
    __tablename__ = "channels"

    kind: Mapped[str] = mapped_column(String(16))  # "api", "whatsapp"
    name: Mapped[str] = mapped_column(String(120))
    # disconnected, connecting, qr, ready, logged_out (an API channel is always ready)
    state: Mapped[str] = mapped_column(String(16), default="disconnected")
    last_error: Mapped[str | None] = mapped_column(String(500))
    # Kind-specific settings: an API channel's webhook_url, a WhatsApp profile's phone.
    config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Signs what goes out to the channel and checks what comes in.
    secret: Mapped[str] = mapped_column(String(128))
    state_changed_at: Mapped[datetime | None]
