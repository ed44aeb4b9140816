"""Channel rules: creating channels, and checking and normalizing what the API channel receives."""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, TypeVar

import httpx
import msgspec
import structlog
from litestar.exceptions import ValidationException
from sqlalchemy import bindparam, select

from channels.adapters import (
    STATE_NAMES,
    InboundAttachment,
    InboundMessage,
    Receipt,
    StoredInbound,
)
from channels.api import SIGNATURE_HEADER, signature_is_valid
from channels.hooks import apply_receipt, inbound_sink
from channels.models import Channel

if TYPE_CHECKING:
    from channels.whatsapp.session import ProfileSession
from channels.phones import normalize_phone
from channels.schemas import ApiAttachment, ApiInbound, ApiReceipt
from hub.auth import CurrentUser
from hub.billing.services.limits import require_room
from hub.db import COLUMNS, HubAsyncSession, table_of, utcnow
from hub.errors import Conflict, InvalidInput, NotAuthenticated, NotFound
from hub.i18n import N_, Term
from hub.kept import Kept
from hub.outbound import OutboundRefused, check_scheme, check_url, guarded_client
from hub.runtime import Runtime
from hub.services import record_audit
from hub.storage import MAX_MEDIA_BYTES, IncomingFile, receive_stream

log = structlog.get_logger(__name__)
T = TypeVar("T")

DOWNLOAD_TIMEOUT_SECONDS = 60
# What one post may bring in all, on disk; in memory it holds one chunk at a time beyond its body.
MAX_POST_MEDIA_BYTES = 2 * MAX_MEDIA_BYTES
BASE64_SLICE = 4 * 64 * 1024  # characters: a whole number of base64 quanta


async def _decoded_chunks(text: str, field: str) -> AsyncIterator[bytes]:
    for start in range(0, len(text), BASE64_SLICE):
        try:
            yield base64.b64decode(text[start : start + BASE64_SLICE], validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput(N_("This is not valid base64."), field=f"{field}.data_base64") from None


async def _receive_attachment(
    runtime: Runtime, position: int, attachment: ApiAttachment, *, room: int
) -> InboundAttachment:
    """One posted attachment written to the media store's incoming area as it arrives: inline
    base64, or downloaded from its URL through the guarded client."""
    field = f"attachments.{position}"
    limit = min(MAX_MEDIA_BYTES, room)
    if attachment.data_base64:
        incoming = await receive_stream(
            runtime.settings, _decoded_chunks(attachment.data_base64, field), limit=limit, field=field
        )
    elif attachment.url:
        incoming = await _download(runtime, attachment.url, field=f"{field}.url", limit=limit)
    else:
        raise InvalidInput(N_("An attachment needs url or data_base64."), field=field)
    return InboundAttachment(
        content_type=attachment.content_type, filename=attachment.filename, incoming=incoming
    )


async def _download(runtime: Runtime, url: str, *, field: str, limit: int) -> IncomingFile:
    """Fetch a file a sender points at, never from the hub's own network, at most `limit` bytes,
    within DOWNLOAD_TIMEOUT_SECONDS in all."""
    policy = runtime.settings.outbound_policy
    try:
        check_scheme(url)
        async with (
            asyncio.timeout(DOWNLOAD_TIMEOUT_SECONDS),
            guarded_client(policy, timeout=DOWNLOAD_TIMEOUT_SECONDS, follow_redirects=True) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise InvalidInput(N_("The attachment could not be downloaded."), field=field)
            return await receive_stream(runtime.settings, response.aiter_bytes(), limit=limit, field=field)
    except (httpx.HTTPError, OutboundRefused, TimeoutError) as error:
        log.info("attachment download failed", reason=str(error) or type(error).__name__)
        raise InvalidInput(N_("The attachment could not be downloaded."), field=field) from None


async def _create_channel(session: HubAsyncSession, actor: CurrentUser, channel: Channel) -> Channel:
    channel.secret = secrets.token_hex(32)
    channel.state_changed_at = utcnow()
    session.add(channel)
    await session.flush()
    changes = {"type": channel.kind, "name": channel.name, **channel.config}
    await record_audit(
        session,
        actor_id=actor.id,
        action="channel.created",
        object_type="channel",
        object_id=channel.id,
        changes=changes,
    )
    await session.commit()
    return channel


async def create_api_channel(
    runtime: Runtime, session: HubAsyncSession, actor: CurrentUser, *, name: str, webhook_url: str
) -> Channel:
    """A new API channel; its webhook must be an address the hub may call (400 otherwise)."""
    try:
        await check_url(runtime.settings.outbound_policy, webhook_url)
    except OutboundRefused:
        raise InvalidInput(
            N_("The hub does not call this address: it must be a public http or https address."),
            field="webhook_url",
        ) from None
    await require_room(session, "api_channels")
    channel = Channel(kind="api", name=name.strip(), state="ready", config={"webhook_url": webhook_url})
    return await _create_channel(session, actor, channel)


async def list_channels(session: HubAsyncSession, kind: str | None = None) -> list[Channel]:
    statement = select(Channel).order_by(Channel.id)
    if kind:
        statement = statement.where(Channel.kind == kind)
    return list(await session.scalars(statement))


# An API channel's row never changes once made (nothing edits or rotates it), so each process
# keeps the ones posting for a few seconds: a busy channel's posts skip the read, and a refused
# or queued post costs the database nothing before its turn. Unknown ids are never kept.
kept_api_channels: Kept[uuid.UUID, Channel] = Kept(seconds=5.0)


async def api_channel(runtime: Runtime, channel_id: uuid.UUID) -> Channel:
    """The API channel a post names; 404 for any other id, before its body is read."""
    kept = kept_api_channels.get(channel_id)
    if kept is not None:
        return kept
    async with runtime.db.system_session() as session:
        # A plain read: the snapshot is not in any session.
        row = (await (await session.connection()).execute(_CHANNEL_BY_ID, {"id": channel_id})).first()
    if row is None or row.kind != "api":
        raise NotFound()
    channel = Channel(**{attribute.key: row._mapping[column] for attribute, column in COLUMNS[Channel]})
    return kept_api_channels.put(channel_id, channel)


_CHANNEL_BY_ID = select(table_of(Channel)).where(
    table_of(Channel).c.id == bindparam("id", type_=table_of(Channel).c.id.type)
)


def check_signature(channel: Channel, header: str | None, body: bytes) -> None:
    """A post counts only with a fresh signature made with its channel's secret."""
    if not signature_is_valid(channel.secret, header, body):
        raise NotAuthenticated(N_("The signature is missing, wrong or too old."), field=SIGNATURE_HEADER)


def decode_body(body: bytes, schema: type[T]) -> T:
    """Decode a body that had to stay raw until its signature was checked; errors name the field."""
    try:
        return msgspec.json.decode(body, type=schema)
    except msgspec.ValidationError as error:
        raise ValidationException(extra=[{"message": str(error), "key": None}]) from None
    except msgspec.DecodeError:
        raise ValidationException(detail="Malformed JSON") from None


async def receive_api_message(runtime: Runtime, channel: Channel, body: bytes) -> StoredInbound:
    post = decode_body(body, ApiInbound)
    if not post.text and not post.attachments:
        raise InvalidInput(N_("A message needs text or attachments."), field="text")
    attachments: list[InboundAttachment] = []
    try:
        room = MAX_POST_MEDIA_BYTES
        for position, attachment in enumerate(post.attachments):
            received = await _receive_attachment(runtime, position, attachment, room=room)
            attachments.append(received)
            room -= received.incoming.size if received.incoming else 0
        phone = normalize_phone(post.sender, possible=True)
        inbound = InboundMessage(
            organization_id=channel.organization_id,
            channel_id=channel.id,
            external_id=post.external_id,
            sender=phone or post.sender.strip(),
            sender_is_phone=phone is not None,
            sender_name=post.name,
            text=post.text,
            kind="text" if not attachments else "media",
            attachments=tuple(attachments),
            reply_to_external_id=post.reply_to,
        )
        return await inbound_sink().store_message(inbound)
    finally:
        for received in attachments:
            if received.incoming is not None:
                received.incoming.discard()


async def receive_api_receipt(channel: Channel, body: bytes) -> None:
    post = decode_body(body, ApiReceipt)
    await apply_receipt(
        Receipt(
            organization_id=channel.organization_id,
            channel_id=channel.id,
            external_id=post.external_id,
            status=post.status,
            reason=post.reason,
        )
    )


# WhatsApp profiles


async def create_whatsapp_profile(session: HubAsyncSession, actor: CurrentUser, *, name: str) -> Channel:
    await require_room(session, "whatsapp_profiles")
    profile = Channel(kind="whatsapp", name=name.strip(), state="disconnected", config={})
    return await _create_channel(session, actor, profile)


async def whatsapp_profile(session: HubAsyncSession, profile_id: uuid.UUID) -> Channel:
    profile = await session.get(Channel, profile_id)
    if profile is None or profile.kind != "whatsapp":
        raise NotFound()
    return profile


async def connect_profile(
    runtime: Runtime, profile: Channel, *, wait_seconds: float
) -> ProfileSession | None:
    """Start the profile's session and wait a little for its QR code, or for it to be ready."""
    from channels.whatsapp.sessions import sessions_of

    running = await sessions_of(runtime).ensure(profile)
    if running is None:
        raise Conflict(N_("This profile is connected by another server process."), field="profile_id")
    deadline = asyncio.get_running_loop().time() + wait_seconds
    while asyncio.get_running_loop().time() < deadline:
        if running.state in ("qr", "ready", "logged_out") or (
            running.state == "disconnected" and running.attempts
        ):
            break
        await asyncio.sleep(0.1)
    return running


async def pair_by_phone(runtime: Runtime, profile: Channel, phone: str) -> str:
    """The code to type on the phone instead of scanning the QR."""
    from neonize.exc import NeonizeError

    from channels.whatsapp.sessions import sessions_of

    running = sessions_of(runtime).get(profile.id)
    number = normalize_phone(phone)
    if number is None:
        raise InvalidInput(N_("This is not a valid phone number."), field="phone")
    if running is None or running.client is None or running.state not in ("qr", "connecting"):
        raise Conflict(
            N_("Connect the profile first; it is {state}."),
            field="profile_id",
            state=STATE_NAMES.get(running.state if running else profile.state, Term(profile.state)),
        )
    try:
        return await running.client.PairPhone(number.lstrip("+"), show_push_notification=True)
    except NeonizeError as error:
        raise Conflict(
            N_("WhatsApp refused the pairing: {reason}"), field="phone", reason=str(error)[:200]
        ) from None
