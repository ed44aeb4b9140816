"""One WhatsApp profile's connection: its neonize client, its states, and reconnecting.

Each profile's keys are kept (`channels.whatsapp.keys`: a file embedded, the hub's database on
PostgreSQL), so a restart, or another process taking it up, reconnects without a new QR. A
dropped connection is retried with exponential backoff and jitter; a logged-out session is not
retried, since only a new QR can bring it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from typing import Any

import segno
import structlog
from neonize.aioze import events as neonize_events
from neonize.aioze.client import NewAClient
from neonize.aioze.events import ConnectedEv, DisconnectedEv, LoggedOutEv, MessageEv, ReceiptEv
from neonize.events import EVENT_TO_INT
from neonize.exc import NeonizeError
from neonize.proto.Neonize_pb2 import Message as MessageProto

from channels.events import ChannelStateChanged, ClientDisconnected, ClientReady, QrCode
from channels.hooks import apply_receipt, inbound_sink
from channels.models import Channel
from channels.whatsapp.keys import device_of, keys_of
from channels.whatsapp.translate import inbound_message, receipts
from hub import metrics
from hub.audience import channel_managers
from hub.db import utcnow
from hub.realtime import SocketEvent, push
from hub.runtime import Runtime, bind, unbind

log = structlog.get_logger(__name__)

MESSAGE_EVENT = EVENT_TO_INT[MessageEv]
# How long neonize's thread waits for a message to be committed before it acknowledges it.
STORE_TIMEOUT_SECONDS = 60


def reconnect_delay(attempt: int, *, base: float, ceiling: float) -> float:
    """Exponential backoff with ±20% jitter, so many profiles never retry in lockstep."""
    delay = min(ceiling, base * 2 ** max(attempt - 1, 0))
    return delay * random.uniform(0.8, 1.2)


def qr_svg(code: str) -> str:
    return segno.make(code, error="l").svg_inline(scale=4)


class ProfileSession:
    def __init__(self, runtime: Runtime, channel: Channel) -> None:
        self.runtime = runtime
        self.channel_id = channel.id
        self.organization_id = channel.organization_id
        self.keys = keys_of(runtime)
        self.state = channel.state
        self.qr_code: str | None = None
        self.attempts = 0
        self.client: NewAClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._logged_out = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if not self.running:
            self._stopping = False
            self._logged_out = False
            self._task = asyncio.create_task(self._run(), name=f"whatsapp:{self.channel_id}")

    async def stop(self) -> None:
        self._stopping = True
        if self.client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.client.disconnect(), 10)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def logout(self) -> None:
        if self.client is not None and self.state == "ready":
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.client.logout(), 15)
        await self._logged_out_now("logged out from the hub")

    async def _run(self) -> None:
        settings = self.runtime.settings
        token = bind(self.runtime)
        try:
            while not self._stopping and not self._logged_out:
                await self._set_state("connecting", None)
                reason = await self._connect_once()
                if self._stopping or self._logged_out:
                    break
                self.attempts += 1
                metrics.WHATSAPP_RECONNECTS.inc()
                await self._set_state("disconnected", reason)
                delay = reconnect_delay(
                    self.attempts,
                    base=settings.whatsapp_reconnect_base,
                    ceiling=settings.whatsapp_reconnect_max,
                )
                log.info(
                    "whatsapp reconnect scheduled",
                    profile=str(self.channel_id),
                    in_seconds=round(delay, 2),
                    attempt=self.attempts,
                    reason=reason,
                )
                await asyncio.sleep(delay)
        finally:
            unbind(token)

    async def _connect_once(self) -> str:
        """Connect and wait until the connection ends; the reason it ended."""
        self._loop = asyncio.get_running_loop()
        # neonize dispatches events to the first loop it ever saw; make it this one.
        neonize_events.event_global_loop = self._loop
        client = await self.keys.client_for(self.channel_id, await self._config())
        self._subscribe(client)
        self.client = client
        try:
            task = await client.connect()
            await task
            return "connection closed"
        except NeonizeError as error:
            return str(error)[:400]
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await client.stop()
            raise

    def _subscribe(self, client: NewAClient) -> None:
        client.qr(self._on_qr)
        client.event(ConnectedEv)(self._on_connected)
        client.event(DisconnectedEv)(self._on_disconnected)
        client.event(LoggedOutEv)(self._on_logged_out)
        client.event(ReceiptEv)(self._on_receipt)
        client.event(MessageEv)(self._on_message)
        dispatch = client.event.execute

        def execute(client_uuid: int, binary: int, size: int, code: int) -> None:
            # neonize would schedule the handler and return at once; for messages this thread waits
            # until the message is committed, so WhatsApp is never told "received" before it is kept.
            if code != MESSAGE_EVENT or self._loop is None:
                dispatch(client_uuid, binary, size, code)
                return
            import ctypes

            event = MessageProto.FromString(ctypes.string_at(binary, size))
            future = asyncio.run_coroutine_threadsafe(self._on_message(client, event), self._loop)
            future.result(timeout=STORE_TIMEOUT_SECONDS)

        client.event.execute = execute

    async def _on_qr(self, _client: NewAClient, data: bytes) -> None:
        self.qr_code = data.decode() if isinstance(data, bytes) else str(data)
        await self._set_state(
            "qr",
            None,
            event=QrCode(profile_id=self.channel_id, code=self.qr_code, svg=qr_svg(self.qr_code)),
        )

    async def _on_connected(self, client: NewAClient, _event: Any) -> None:
        self.attempts = 0
        self.qr_code = None
        phone = device = None
        if client.me is not None and getattr(client.me, "JID", None) is not None:
            phone = f"+{client.me.JID.User}" if client.me.JID.User.isdigit() else None
            device = device_of(client.me.JID)
        await self._set_state(
            "ready",
            None,
            paired=True,
            phone=phone,
            device=device,
            event=ClientReady(profile_id=self.channel_id, phone=phone),
        )

    async def _on_disconnected(self, _client: NewAClient, _event: Any) -> None:
        await self._set_state(
            "disconnected",
            "connection lost",
            event=ClientDisconnected(profile_id=self.channel_id, reason="connection lost"),
        )

    async def _on_logged_out(self, _client: NewAClient, event: Any) -> None:
        await self._logged_out_now(f"logged out ({getattr(event, 'Reason', '')})")

    async def _logged_out_now(self, reason: str) -> None:
        self._logged_out = True
        await self.keys.forget(self.channel_id, await self._config())  # void: the next connect shows a QR
        await self._set_state(
            "logged_out",
            reason,
            paired=False,
            event=ClientDisconnected(profile_id=self.channel_id, reason="logged_out"),
        )

    async def _on_message(self, client: NewAClient, event: Any) -> None:
        metrics.arrived.set(time.monotonic())  # for the inbound-to-emit histogram
        inbound = await inbound_message(
            event,
            organization_id=self.organization_id,
            channel_id=self.channel_id,
            download=client.download_any,
        )
        if inbound is not None:
            await inbound_sink().store_message(inbound)

    async def _on_receipt(self, _client: NewAClient, event: Any) -> None:
        for receipt in receipts(event, organization_id=self.organization_id, channel_id=self.channel_id):
            await apply_receipt(receipt)

    async def _config(self) -> dict[str, Any]:
        async with self.runtime.db.session(self.organization_id) as session:
            channel = await session.get(Channel, self.channel_id)
            return dict(channel.config) if channel is not None else {}

    async def _set_state(
        self,
        state: str,
        detail: str | None,
        *,
        paired: bool | None = None,
        phone: str | None = None,
        device: dict[str, Any] | None = None,
        event: SocketEvent | None = None,
    ) -> None:
        self.state = state
        async with self.runtime.db.session(self.organization_id) as session:
            channel = await session.get(Channel, self.channel_id)
            if channel is None:
                self._stopping = True
                return
            changed = channel.state != state or channel.last_error != detail
            channel.state, channel.last_error = state, detail
            if changed:
                channel.state_changed_at = utcnow()
            if paired is not None or phone or device:
                config = dict(channel.config)
                if paired is not None:
                    config["paired"] = paired
                if phone:
                    config["phone"] = phone
                if device:
                    config["device"] = device
                channel.config = config
            if changed:
                push(
                    session,
                    ChannelStateChanged(profile_id=self.channel_id, state=state, detail=detail),
                    channel_managers(),
                )
            if event is not None:
                push(session, event, channel_managers())
            await session.commit()
