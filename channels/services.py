"""Channel rules: creating channels, and checking and normalizing what the API channel receives."""

from __future__ import annotations

import secrets
import uuid
from typing import TypeVar

import msgspec
from litestar.exceptions import ValidationException
from sqlalchemy import select

from channels.adapters import InboundMessage, Receipt, StoredInbound, inbound_sink
from channels.api import SIGNATURE_HEADER, signature_is_valid
from channels.models import Channel
from channels.phones import normalize_phone
from channels.schemas import ApiInbound, ApiReceipt
from hub.auth import CurrentUser
from hub.db import HubAsyncSession, utcnow
from hub.errors import HubError, InvalidInput, NotAuthenticated, NotFound
from hub.i18n import N_
from hub.runtime import Runtime
from hub.services import record_audit

T = TypeVar("T")


class UnsupportedMedia(HubError):
    status_code = 415
    default_message = N_("This media type is not supported.")


async def create_api_channel(
    session: HubAsyncSession, actor: CurrentUser, *, name: str, webhook_url: str
) -> Channel:
    channel = Channel(
        kind="api",
        name=name.strip(),
        state="ready",
        config={"webhook_url": webhook_url},
        secret=secrets.token_hex(32),
        state_changed_at=utcnow(),
    )
    session.add(channel)
    await session.flush()
    await record_audit(
        session,
        actor_id=actor.id,
        action="channel.created",
        object_type="channel",
        object_id=channel.id,
        changes={"type": "api", "name": channel.name, "webhook_url": webhook_url},
    )
    await session.commit()
    return channel


async def list_channels(session: HubAsyncSession, kind: str | None = None) -> list[Channel]:
    statement = select(Channel).order_by(Channel.id)
    if kind:
        statement = statement.where(Channel.kind == kind)
    return list(await session.scalars(statement))


async def signed_channel(runtime: Runtime, channel_id: uuid.UUID, header: str | None, body: bytes) -> Channel:
    """The API channel this post is for, if it carries a fresh signature made with its secret."""
    async with runtime.db.system_session() as session:
        channel = await session.get(Channel, channel_id)
    if channel is None or channel.kind != "api":
        raise NotFound()
    if not signature_is_valid(channel.secret, header, body):
        raise NotAuthenticated(N_("The signature is missing, wrong or too old."), field=SIGNATURE_HEADER)
    return channel


def decode_body(body: bytes, schema: type[T]) -> T:
    """Decode a body that had to stay raw until its signature was checked; errors name the field."""
    try:
        return msgspec.json.decode(body, type=schema)
    except msgspec.ValidationError as error:
        raise ValidationException(extra=[{"message": str(error), "key": None}]) from None
    except msgspec.DecodeError:
        raise ValidationException(detail="Malformed JSON") from None


async def receive_api_message(channel: Channel, body: bytes) -> StoredInbound:
    post = decode_body(body, ApiInbound)
    if post.attachments:
        # Media arrives with the media storage; until then it is refused rather than dropped.
        raise UnsupportedMedia(field="attachments")
    if not post.text:
        raise InvalidInput(N_("A message needs text or attachments."), field="text")
    phone = normalize_phone(post.sender)
    inbound = InboundMessage(
        organization_id=channel.organization_id,
        channel_id=channel.id,
        external_id=post.external_id,
        sender=phone or post.sender.strip(),
        sender_is_phone=phone is not None,
        sender_name=post.name,
        text=post.text,
        reply_to_external_id=post.reply_to,
    )
    return await inbound_sink().store_message(inbound)


async def receive_api_receipt(channel: Channel, body: bytes) -> None:
    post = decode_body(body, ApiReceipt)
    await inbound_sink().apply_receipt(
        Receipt(
            organization_id=channel.organization_id,
            channel_id=channel.id,
            external_id=post.external_id,
            status=post.status,
            reason=post.reason,
        )
    )
