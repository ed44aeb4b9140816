"""Socket fan-out under pressure: a client that stops reading is closed once its queue is full,
and holds nobody else back; pushes waiting for their emit are bounded and refuse channel posts
past half of the bound."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest
import socketio

from hub.errors import Busy
from hub.fanout import Fanout
from hub.throttle import Gate
from tests.conftest import eventually, make_settings, register, start_hub


def masked_text_frame(text: str) -> bytes:
    """One client-to-server websocket text frame (clients must mask theirs)."""
    payload = text.encode()
    assert len(payload) < 1 << 16
    mask = os.urandom(4)
    length = (
        bytes([0x80 | len(payload)])
        if len(payload) < 126
        else bytes([0x80 | 126]) + len(payload).to_bytes(2, "big")
    )
    return bytes([0x81]) + length + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def stalled_socket(url: str, token: str) -> asyncio.StreamWriter:
    """A Socket.IO client on a bare TCP connection that upgrades to a websocket, signs in and then
    never reads again, with a receive buffer as small as the system allows."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    host, port = url.split("://", 1)[1].split(":")
    raw.connect((host, int(port)))
    raw.setblocking(False)
    reader, writer = await asyncio.open_connection(sock=raw)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    assert b" 101 " in await reader.readuntil(b"\r\n\r\n")
    writer.write(masked_text_frame("40" + json.dumps({"token": token})))
    await writer.drain()
    return writer


class Reader:
    """A socket that reads every probe, and lets the test wait for each one."""

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.numbers: list[int] = []
        self.arrived = asyncio.Event()

        @self.client.on("probe")
        async def probe(data: dict[str, Any]) -> None:
            self.numbers.append(data["n"])
            self.arrived.set()

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(10):
            while len(self.numbers) < count:
                self.arrived.clear()
                await self.arrived.wait()


async def test_a_client_that_stops_reading_is_closed_and_holds_nobody_back(tmp_path: Path) -> None:
    hub = await start_hub(make_settings(tmp_path, HUB_SOCKET_MAX_QUEUED="50"), kind="sqlite")
    try:
        organization = await register(hub)
        pusher, manager = hub.runtime.pusher, hub.app.socket_server.manager
        assert pusher is not None
        admins = f"org:{organization.id}:role:admin"
        stalled = await stalled_socket(hub.url, organization.admin.token)
        await eventually(lambda: len(list(manager.get_participants("/", admins))) == 1)
        reader = Reader()
        await reader.client.connect(
            hub.url, auth={"token": organization.admin.token}, transports=["websocket"]
        )
        assert len(list(manager.get_participants("/", admins))) == 2

        # Far more than a stalled client's buffers hold (16 KB each, 9.6 MB in all): its queue
        # fills and it is closed, while the reader gets every one as it goes.
        bulk = "x" * 16_000
        for number in range(600):
            await pusher.push(
                "probe", {"n": number, "bulk": bulk}, organization_id=organization.id, roles=["admin"]
            )
            await reader.wait_for(number + 1)
        assert reader.numbers == list(range(600))  # in order, none lost
        assert manager.slow_closed == 1
        # Its room places are gone, so the next pushes skip it; the reader is still there.
        assert len(list(manager.get_participants("/", admins))) == 1
        await pusher.push("probe", {"n": 600}, organization_id=organization.id, roles=["admin"])
        await reader.wait_for(601)
        assert reader.client.connected
        await reader.client.disconnect()
        stalled.transport.abort()
    finally:
        await hub.stop()


async def test_pushes_waiting_for_their_emit_are_bounded_and_close_the_gate() -> None:
    emitted: list[int] = []
    released = asyncio.Event()

    async def emit_many(emissions: list[tuple[str, Any, list[str]]]) -> None:
        await released.wait()  # a process too busy to emit
        emitted.extend(data for _event, data, _rooms in emissions)

    fanout = Fanout(emit_many, limit=4)
    gate = Gate(64, backlog=lambda: fanout.oldest_wait, max_wait=0.1)
    with gate.enter():
        pass  # nothing waits: posts are taken

    await fanout.put("probe", 0, ["room"])
    await asyncio.sleep(0.05)  # taken: in the emit, which does not come back
    for number in range(1, 5):  # four waiting: the queue is full
        await fanout.put("probe", number, ["room"])
    assert fanout.backlog == 4
    with gate.enter():
        pass  # they have not waited long yet
    await asyncio.sleep(0.15)  # the oldest has waited longer than the gate allows
    assert fanout.oldest_wait >= 0.15
    with pytest.raises(Busy) as refused, gate.enter():
        pass
    assert refused.value.reason == "fanout_backlog"
    assert gate.refused == 1

    sixth = asyncio.create_task(fanout.put("probe", 5, ["room"]))
    await asyncio.sleep(0.05)
    assert not sixth.done()  # a full queue makes the push wait: nothing committed goes unannounced

    released.set()
    await sixth
    await fanout.put("probe", 6, ["room"], wait=True)
    assert emitted == list(range(7))  # all of them, in the order they were put
    assert fanout.backlog == 0
    assert fanout.oldest_wait == 0
    with gate.enter():
        pass  # emptied: posts are taken again
    await fanout.close()
