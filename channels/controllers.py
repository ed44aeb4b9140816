"""HTTP for channels: creating API channels and the signed posts they receive."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from channels import services
from channels.adapters import ChannelError
from channels.api import SIGNATURE_HEADER
from channels.models import Channel
from channels.schemas import (
    ApiInbound,
    ApiReceipt,
    ChannelCreatedOut,
    ChannelOut,
    ConnectRequest,
    CreateChannelRequest,
    InboundAccepted,
    PairCodeOut,
    PairPhoneRequest,
    ProfileIn,
    ProfileOut,
)
from channels.views import channel_out, channel_urls, profile_out
from channels.whatsapp.sessions import sessions_of
from hub import metrics
from hub.auth import CurrentUser
from hub.controllers import RuntimeDep, SessionDep
from hub.errors import Busy, Conflict, HubError, NotAuthenticated, NotFound, RequestTimeout, TooManyRequests
from hub.i18n import N_
from hub.permissions import requires
from hub.throttle import client_address


class ChannelController(Controller):
    path = "/api/channels"
    tags = ["channels"]  # noqa: RUF012

    @post("/", guards=[requires("settings", "write")], status_code=201, errors=(402,))
    async def create(
        self,
        request: Request[CurrentUser, Any, Any],
        runtime: RuntimeDep,
        session: SessionDep,
        data: JSONBody[CreateChannelRequest],
    ) -> ChannelCreatedOut:
        channel = await services.create_api_channel(
            runtime, session, request.user, name=data.name, webhook_url=data.webhook_url
        )
        inbound, receipts = channel_urls(request, channel)
        return ChannelCreatedOut(
            id=channel.id,
            type=channel.kind,
            name=channel.name,
            state=channel.state,
            inbound_url=inbound,
            receipts_url=receipts,
            webhook_url=data.webhook_url,
            secret=channel.secret,
        )

    @get("/", guards=[requires("whatsapp", "read")])
    async def list_channels(
        self, request: Request[CurrentUser, Any, Any], session: SessionDep
    ) -> list[ChannelOut]:
        return [channel_out(request, c) for c in await services.list_channels(session)]

    # Inline base64 media up to about 30 MB; larger files come by URL.
    @post(
        "/{channel_id:uuid}/inbound",
        exclude_from_auth=True,
        status_code=HTTP_202_ACCEPTED,
        request_max_body_size=40 * 1024 * 1024,
        signed_body=ApiInbound,
        errors=(401, 408, 415),
    )
    async def inbound(
        self, request: Request[Any, Any, Any], runtime: RuntimeDep, channel_id: FromPath[uuid.UUID]
    ) -> InboundAccepted:
        async with channel_post(request, runtime, channel_id, "message") as (channel, body):
            stored = await services.receive_api_message(runtime, channel, body)
        return InboundAccepted(message_id=stored.message_id, conversation_id=stored.conversation_id)

    @post(
        "/{channel_id:uuid}/receipts",
        exclude_from_auth=True,
        status_code=HTTP_204_NO_CONTENT,
        request_max_body_size=64 * 1024,
        signed_body=ApiReceipt,
        errors=(401, 408),
    )
    async def receipts(
        self, request: Request[Any, Any, Any], runtime: RuntimeDep, channel_id: FromPath[uuid.UUID]
    ) -> None:
        async with channel_post(request, runtime, channel_id, "receipt") as (channel, body):
            await services.receive_api_receipt(channel, body)


@contextlib.asynccontextmanager
async def channel_post(
    request: Request[Any, Any, Any], runtime: RuntimeDep, channel_id: uuid.UUID, kind: str
) -> AsyncIterator[tuple[Channel, bytes]]:
    """What every post a channel makes to the hub goes through, cheapest refusals first (a process
    past what it can take has turned it away already, at the door: `hub.app.OverloadGuard`): an
    address that keeps naming unknown channels or signing wrongly is turned away (429); an
    unknown channel is 404 before its body is read; a body is read with a deadline and under a
    per-channel gate, so slow or endless bodies hold only their own channel's slots; and only a
    signed post takes one of the process's working slots (503 when they are all busy or it
    waited too long for its turn)."""
    settings = runtime.settings
    arrived = time.monotonic()
    metrics.arrived.set(arrived)  # for the inbound-to-emit histogram
    result = "accepted"
    strikes = f"inbound-fail:{client_address(request)}:{int(time.time() // 60)}"
    try:
        if await runtime.counters.count(strikes) >= settings.inbound_failures_per_address:
            raise TooManyRequests(headers={"Retry-After": str(60 - int(time.time()) % 60)})
        try:
            channel = await services.api_channel(runtime, channel_id)
            with runtime.channel_gates.enter(channel.id):
                reading = time.monotonic()
                try:
                    async with asyncio.timeout(settings.inbound_body_seconds):
                        body = await request.body()
                except TimeoutError:
                    raise RequestTimeout(field="body") from None
                services.check_signature(channel, request.headers.get(SIGNATURE_HEADER), body)
                # How long it waited here before its body was read (for the database, mostly).
                with runtime.inbound_gate.enter(reading - arrived):
                    yield channel, body
        except (NotFound, NotAuthenticated):
            await runtime.counters.hit(strikes, 60)
            raise
    except BaseException as error:
        result = _result_of(error)
        if isinstance(error, Busy):
            metrics.inbound_refused(error.reason)
        raise
    finally:
        metrics.INBOUND_POSTS.labels(kind, result).inc()


def _result_of(error: BaseException) -> str:
    if isinstance(error, Busy):
        return "refused"
    if isinstance(error, TooManyRequests):
        return "throttled"
    if isinstance(error, NotFound | NotAuthenticated):
        return "rejected"
    if isinstance(error, RequestTimeout):
        return "timeout"
    return "invalid" if isinstance(error, HubError) else "failed"


class WhatsAppProfileController(Controller):
    """The seed's WhatsApp profiles: create, connect by QR (or phone code), watch, log out."""

    path = "/api/whatsapp"
    tags = ["whatsapp"]  # noqa: RUF012

    @get("/profiles", guards=[requires("whatsapp", "read")])
    async def list_profiles(self, runtime: RuntimeDep, session: SessionDep) -> list[ProfileOut]:
        held = sessions_of(runtime)
        return [
            profile_out(p, held.get(p.id)) for p in await services.list_channels(session, kind="whatsapp")
        ]

    @post("/profiles", guards=[requires("settings", "write")], status_code=201, errors=(402,))
    async def create_profile(
        self, request: Request[CurrentUser, Any, Any], session: SessionDep, data: JSONBody[ProfileIn]
    ) -> ProfileOut:
        return profile_out(await services.create_whatsapp_profile(session, request.user, name=data.name))

    @get("/profiles/{profile_id:uuid}", guards=[requires("whatsapp", "read")])
    async def profile(
        self, runtime: RuntimeDep, session: SessionDep, profile_id: FromPath[uuid.UUID]
    ) -> ProfileOut:
        profile = await services.whatsapp_profile(session, profile_id)
        return profile_out(profile, sessions_of(runtime).get(profile.id))

    @post("/connect", guards=[requires("settings", "read")], status_code=200, errors=(404,))
    async def connect(
        self, runtime: RuntimeDep, session: SessionDep, data: JSONBody[ConnectRequest]
    ) -> ProfileOut:
        """Start the session; the answer carries the QR as soon as WhatsApp sends one. Later codes
        arrive as `qrCode` events, then `clientReady`."""
        profile = await services.whatsapp_profile(session, data.profile_id)
        await session.commit()  # let go of the database while waiting for WhatsApp
        running = await services.connect_profile(runtime, profile, wait_seconds=data.wait_seconds)
        await session.refresh(profile)
        return profile_out(profile, running)

    @post("/profiles/{profile_id:uuid}/pair-phone", guards=[requires("settings", "read")], status_code=200)
    async def pair_phone(
        self,
        runtime: RuntimeDep,
        session: SessionDep,
        profile_id: FromPath[uuid.UUID],
        data: JSONBody[PairPhoneRequest],
    ) -> PairCodeOut:
        profile = await services.whatsapp_profile(session, profile_id)
        await session.commit()  # let go of the database while waiting for WhatsApp
        return PairCodeOut(code=await services.pair_by_phone(runtime, profile, data.phone))

    @post("/profiles/{profile_id:uuid}/logout", guards=[requires("settings", "read")], status_code=200)
    async def logout(
        self, runtime: RuntimeDep, session: SessionDep, profile_id: FromPath[uuid.UUID]
    ) -> ProfileOut:
        profile = await services.whatsapp_profile(session, profile_id)
        await session.commit()  # let go of the database while the session logs out
        try:
            await sessions_of(runtime).logout(profile)
        except ChannelError as error:
            raise Conflict(
                N_("The profile could not be logged out: {reason}"), field="profile_id", reason=error.reason
            ) from None
        await session.refresh(profile)
        return profile_out(profile)


ROUTES = [ChannelController, WhatsAppProfileController]
