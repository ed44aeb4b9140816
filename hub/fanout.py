"""Socket fan-out with its own budget: what one push costs, and what a slow client may hold.

A push is put on this process's fan-out queue (bounded) and emitted by one task, in commit order,
so the request that committed does not wait for its sockets. An emit encodes the event once and
puts that one packet on each socket's queue; no task per socket. A socket whose queue holds
`max_queued` packets is a client that stopped reading: it is closed (its client reconnects and
reads again what it shows) instead of growing without bound.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import time
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
import structlog
from engineio import packet as eio_packet
from socketio import packet as sio_packet

from hub import metrics

log = structlog.get_logger(__name__)


class EncodedPacket(eio_packet.Packet):
    """An Engine.IO message encoded once for every socket it goes to."""

    def __init__(self, encoded: str) -> None:
        super().__init__(eio_packet.MESSAGE, encoded)
        self._encoded = str(eio_packet.MESSAGE) + encoded

    def encode(self, b64: bool = False) -> str:
        return self._encoded


class LocalRooms(socketio.AsyncManager):
    """The rooms of this process's sockets, emitting as described above. Shared rooms (Redis) build
    on it, so an event that arrives from another process is delivered the same way."""

    max_queued = 1000
    slow_closed = 0  # sockets closed because their client stopped reading

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._closing: dict[str, asyncio.Task[None]] = {}

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        room = to or room
        if callback is not None or namespace not in self.rooms:
            await super().emit(
                event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, **kwargs
            )
            return
        arguments = list(data) if isinstance(data, tuple) else ([] if data is None else [data])
        encoded = self.server.packet_class(
            sio_packet.EVENT, namespace=namespace, data=[event, *arguments]
        ).encode()
        if not isinstance(encoded, str):  # binary attachments: several packets, the library's way
            await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, **kwargs)
            return
        message = EncodedPacket(encoded)
        skipped = set(skip_sid) if isinstance(skip_sid, list) else {skip_sid}
        sockets = self.server.eio.sockets
        for sid, eio_sid in self.get_participants(namespace, room):
            socket = sockets.get(eio_sid)
            if sid in skipped or socket is None or socket.closing or socket.closed:
                continue
            if socket.queue.qsize() >= self.max_queued:
                self._close_slow(socket)
                continue
            socket.queue.put_nowait(message)

    def _close_slow(self, socket: Any) -> None:
        if socket.sid in self._closing:
            return
        self.slow_closed += 1
        metrics.SLOW_SOCKETS.inc()
        log.warning("socket closed: its client stopped reading", queued=socket.queue.qsize())
        # Closed without waiting for its queue to drain, which a client that does not read never does.
        closing = self._closing[socket.sid] = asyncio.create_task(socket.close(wait=False, abort=True))
        closing.add_done_callback(lambda _: self._closing.pop(socket.sid, None))


Emission = tuple[str, Any, list[str]]  # event, data, rooms
EmitMany = Callable[[list[Emission]], Awaitable[None]]
BATCH = 100


class Fanout:
    """This process's pushes waiting for their emit, at most `limit` of them. A full queue makes
    the next push wait (nothing committed goes unannounced) and tells the inbound gate the process
    is past what it can take. What has piled up is emitted together (`emit_many`: with Redis, one
    round trip for all of it), in the order it was put."""

    def __init__(self, emit_many: EmitMany, limit: int) -> None:
        self._emit_many = emit_many
        self.limit = limit
        # (event, data, rooms, a future to tell, when the inbound message it announces arrived)
        self._queue: (
            asyncio.Queue[tuple[str, Any, list[str], asyncio.Future[None] | None, float | None]] | None
        ) = None
        self._task: asyncio.Task[None] | None = None
        self._queued_at: collections.deque[float] = collections.deque()  # beside the queue, in order

    @property
    def backlog(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    @property
    def oldest_wait(self) -> float:
        """How long the oldest push still queued has waited, in seconds (0 when none waits)."""
        return time.monotonic() - self._queued_at[0] if self._queued_at else 0.0

    async def put(self, event: str, data: Any, rooms: list[str], *, wait: bool = False) -> None:
        """Queue an emit; with `wait`, return once it went out (a logout's notice before its close)."""
        if self._queue is None:
            self._queue = asyncio.Queue(self.limit)
        if self._task is None or self._task.done():
            if self._task is not None and not self._task.cancelled():
                log.error("socket fan-out stopped; started again", error=repr(self._task.exception()))
            # A context of its own: not the first caller's (its request id, its bound hub).
            self._task = asyncio.create_task(self._run(), context=contextvars.Context())
        assert self._queue is not None
        done = asyncio.get_running_loop().create_future() if wait else None
        arrived = metrics.arrived.get() if event == "newMessage" else None
        await self._queue.put((event, data, rooms, done, arrived))
        self._queued_at.append(time.monotonic())  # no other task ran since the put: same order
        if done is not None:
            await done

    async def _run(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            batch = [await queue.get()]
            while len(batch) < BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            for _ in batch:
                if self._queued_at:
                    self._queued_at.popleft()
            try:
                await self._emit_many([(event, data, rooms) for event, data, rooms, _, _ in batch])
                now = time.monotonic()
                for *_, arrived in batch:
                    if arrived is not None:
                        metrics.INBOUND_TO_EMIT.observe(now - arrived)
            except Exception:
                log.exception("socket events not emitted", socket_events=len(batch))
            finally:
                for _, _, _, done, _ in batch:
                    queue.task_done()
                    if done is not None and not done.done():
                        done.set_result(None)
            # Let the sockets' writers run between emits: a burst is written as it goes, and only a
            # client that does not read lets its queue fill.
            await asyncio.sleep(0)

    async def close(self) -> None:
        """Emit what is queued, then stop."""
        if self._task is None:
            return
        if self._queue is not None and not self._task.done():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
