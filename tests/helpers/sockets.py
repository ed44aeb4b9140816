"""A Socket.IO client signed in as someone, recording every event it receives; every declared
event it reads is checked against its declared contract."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
import socketio

from hub.realtime import declared_socket_events

if TYPE_CHECKING:
    from tests.conftest import RunningHub


class SocketEvents:
    """Everything one socket receives, by event name."""

    def __init__(self, client: socketio.AsyncClient) -> None:
        self.client = client
        self.received: list[tuple[str, Any]] = []

        @client.on("*")
        async def any_event(event: str, data: Any) -> None:
            self.received.append((event, data))

    def named(self, event: str) -> list[Any]:
        """The payloads of one event; a declared event's must read as its struct (fields, types)."""
        found = [data for name, data in self.received if name == event]
        declared = declared_socket_events().get(event)
        for data in found if declared is not None else ():
            msgspec.convert(data, declared)
        return found


async def connect(hub: RunningHub, token: str) -> SocketEvents:
    client = socketio.AsyncClient(reconnection=False)
    inbox = SocketEvents(client)
    await client.connect(hub.url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    return inbox
