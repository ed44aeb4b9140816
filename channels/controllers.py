"""HTTP for channels: creating API channels and the signed posts they receive."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from channels import services
from channels.api import SIGNATURE_HEADER
from channels.models import Channel
from channels.schemas import ChannelCreatedOut, ChannelOut, CreateChannelRequest, InboundAccepted
from hub.auth import CurrentUser
from hub.controllers import RuntimeDep, SessionDep, public_url
from hub.permissions import requires


def channel_urls(request: Request[Any, Any, Any], channel: Channel) -> tuple[str, str]:
    base = f"{public_url(request)}/api/channels/{channel.id}"
    return f"{base}/inbound", f"{base}/receipts"


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


class ChannelController(Controller):
    path = "/api/channels"
    tags = ["channels"]  # noqa: RUF012

    @post("/", guards=[requires("settings", "write")], status_code=201)
    async def create(
        self,
        request: Request[CurrentUser, Any, Any],
        session: SessionDep,
        data: JSONBody[CreateChannelRequest],
    ) -> ChannelCreatedOut:
        channel = await services.create_api_channel(
            session, request.user, name=data.name, webhook_url=data.webhook_url
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
    )
    async def inbound(
        self, request: Request[Any, Any, Any], runtime: RuntimeDep, channel_id: FromPath[uuid.UUID]
    ) -> InboundAccepted:
        body = await request.body()
        channel = await services.signed_channel(
            runtime, channel_id, request.headers.get(SIGNATURE_HEADER), body
        )
        stored = await services.receive_api_message(channel, body)
        return InboundAccepted(message_id=stored.message_id, conversation_id=stored.conversation_id)

    @post("/{channel_id:uuid}/receipts", exclude_from_auth=True, status_code=HTTP_204_NO_CONTENT)
    async def receipts(
        self, request: Request[Any, Any, Any], runtime: RuntimeDep, channel_id: FromPath[uuid.UUID]
    ) -> None:
        body = await request.body()
        channel = await services.signed_channel(
            runtime, channel_id, request.headers.get(SIGNATURE_HEADER), body
        )
        await services.receive_api_receipt(channel, body)


ROUTES = [ChannelController]
