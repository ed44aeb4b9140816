"""The API channel: any outside system (a website, n8n, an SMS bridge) talks to the hub over HTTP.

Inbound posts and outbound webhooks carry `X-Hub-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256
of "<t>.<raw body>">` made with the channel's secret; a signature older than five minutes is
refused, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import time
import uuid
from typing import Any, ClassVar

import httpx
import msgspec
import structlog

from channels.adapters import (
    ChannelError,
    OutboundAttachment,
    OutboundMessage,
    SendResult,
    SentRecord,
    register_adapter,
)
from channels.models import Channel
from hub.outbound import GENERIC_FAILURE, TooLarge, is_refusal, read_capped, shared_client
from hub.runtime import current

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature"
SIGNATURE_TOLERANCE_SECONDS = 300
WEBHOOK_TIMEOUT_SECONDS = 15


def signature(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def signature_is_valid(secret: str, header: str | None, body: bytes, *, now: float | None = None) -> bool:
    if not header:
        return False
    parts = dict(part.strip().split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs((now if now is not None else time.time()) - timestamp) > SIGNATURE_TOLERANCE_SECONDS:
        return False
    expected = signature(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


# What the hub keeps of a receiving system's answer: an id of bounded length and plain characters.
EXTERNAL_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,200}$")
MAX_ANSWER_BYTES = 64 * 1024


def external_id_of(answer: Any) -> str | None:
    """The receiving system's id for a message, when its answer names a usable one."""
    value = answer.get("external_id") if isinstance(answer, dict) else None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return value if isinstance(value, str) and EXTERNAL_ID.match(value) else None


def _attachment(attachment: OutboundAttachment) -> dict[str, Any]:
    described: dict[str, Any] = {
        "kind": attachment.kind,
        "content_type": attachment.content_type,
        "filename": attachment.filename,
    }
    if attachment.url:
        described["url"] = attachment.url
    else:
        described["data_base64"] = base64.b64encode(attachment.data).decode()
    return described


class ApiChannelAdapter:
    kind: ClassVar[str] = "api"

    async def start(self, channel: Channel) -> None:
        """Nothing to connect: an API channel is ready as soon as it exists."""

    async def stop(self, channel: Channel) -> None:
        """Nothing to disconnect."""

    async def send(self, channel: Channel, message: OutboundMessage) -> SendResult:
        answer = await self._post(
            channel,
            {
                "type": "message",
                "message_id": str(message.message_id),
                "conversation_id": str(message.conversation_id) if message.conversation_id else None,
                "to": message.recipient,
                "text": message.text,
                "kind": message.kind,
                "attachments": [_attachment(a) for a in message.attachments],
                "reply_to": message.reply_to_external_id,
            },
        )
        return SendResult(external_id=external_id_of(answer) or str(message.message_id))

    async def edit(self, channel: Channel, *, recipient: str, external_id: str, text: str) -> None:
        await self._post(
            channel, {"type": "message_edited", "to": recipient, "external_id": external_id, "text": text}
        )

    async def delete(self, channel: Channel, *, recipient: str, external_id: str) -> None:
        await self._post(channel, {"type": "message_deleted", "to": recipient, "external_id": external_id})

    async def mark_read(self, channel: Channel, *, recipient: str, external_ids: list[str]) -> None:
        await self._post(channel, {"type": "messages_read", "to": recipient, "external_ids": external_ids})

    async def find_sent(self, channel: Channel, message_id: uuid.UUID) -> SentRecord | None:
        """Ask the receiving system whether it got a message id: it answers `{"found": true,
        "external_id": ...}` or `{"found": false}`; any other answer means it cannot tell."""
        try:
            answer = await self._post(channel, {"type": "message_lookup", "message_id": str(message_id)})
        except ChannelError:
            return None
        if not isinstance(answer, dict) or not isinstance(answer.get("found"), bool):
            return None
        return SentRecord(found=answer["found"], external_id=external_id_of(answer))

    async def _post(self, channel: Channel, payload: dict[str, Any]) -> Any:
        """POST a signed payload to the channel's webhook through the guarded client. Every
        failure reads the same to the tenant (GENERIC_FAILURE); the details go to the log."""
        url = channel.config.get("webhook_url")
        if not url:
            raise ChannelError("the channel has no webhook_url", retryable=False)
        body = msgspec.json.encode(payload)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(channel.secret, body, int(time.time())),
            "User-Agent": "hub-webhook/1",
        }
        client = shared_client(current().settings.outbound_policy, timeout=WEBHOOK_TIMEOUT_SECONDS)
        failure: dict[str, Any] = {"channel_id": str(channel.id), "type": payload.get("type")}
        try:
            async with (
                asyncio.timeout(WEBHOOK_TIMEOUT_SECONDS * 2),
                client.stream("POST", url, content=body, headers=headers) as response,
            ):
                status = response.status_code
                answer = b"".join([chunk async for chunk in read_capped(response, MAX_ANSWER_BYTES)])
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            refused = is_refusal(error)
            log.info("webhook not reached", refused=refused, error=type(error).__name__, **failure)
            raise ChannelError(GENERIC_FAILURE, retryable=not refused) from error
        except (httpx.HTTPError, TimeoutError, TooLarge) as error:
            # The request may have been read before the answer was lost.
            log.info("webhook answer lost", error=type(error).__name__, **failure)
            raise ChannelError(GENERIC_FAILURE, retryable=True, in_doubt=True) from error
        if status == 429 or status >= 500:
            log.info("webhook answered", status=status, **failure)
            raise ChannelError(GENERIC_FAILURE, retryable=True)
        if status >= 300:
            log.info("webhook refused", status=status, **failure)
            raise ChannelError(GENERIC_FAILURE, retryable=False)
        try:
            return msgspec.json.decode(answer) if answer else None
        except msgspec.DecodeError:
            return None


register_adapter(ApiChannelAdapter())
