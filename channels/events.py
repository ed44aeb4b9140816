"""What channels push to sockets: a WhatsApp profile's connection, to those who manage numbers."""

from __future__ import annotations

import uuid
from typing import ClassVar

from hub.realtime import SocketEvent, socket_event


@socket_event
class QrCode(SocketEvent, kw_only=True):
    """WhatsApp sent a new QR code for the profile: scan it with the phone to link the number."""

    name: ClassVar[str] = "qrCode"
    profile_id: uuid.UUID
    code: str
    svg: str


@socket_event
class ClientReady(SocketEvent, kw_only=True):
    """The profile is linked and connected."""

    name: ClassVar[str] = "clientReady"
    profile_id: uuid.UUID
    phone: str | None


@socket_event
class ClientDisconnected(SocketEvent, kw_only=True):
    """The profile lost its connection (it comes back by itself) or was logged out (`logged_out`)."""

    name: ClassVar[str] = "clientDisconnected"
    profile_id: uuid.UUID
    reason: str


@socket_event
class ChannelStateChanged(SocketEvent, kw_only=True):
    """A profile's state changed: disconnected, connecting, qr, ready, logged_out."""

    name: ClassVar[str] = "channelStateChanged"
    profile_id: uuid.UUID
    state: str
    detail: str | None
