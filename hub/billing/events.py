"""Billing's socket events: its public contract."""

from __future__ import annotations

from typing import ClassVar

from hub.realtime import SocketEvent, socket_event


@socket_event
class UsageUpdated(SocketEvent, kw_only=True):
    """A monthly counter crossed 80% or 100% of the plan's limit (to admins)."""

    name: ClassVar[str] = "usageUpdated"
    limit: str  # messages_per_month, campaign_recipients_per_month, ai_credits_per_month
    used: int
    value: int  # the plan's limit
    percent: int  # 80 or 100: the mark crossed
