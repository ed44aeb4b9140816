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
import time
import uuid
import weakref
from typing import Any, ClassVar

import httpx
import msgspec

from channels.adapters import (
    ChannelError,
    OutboundAttachment,
    OutboundMessage,
    SendResult,
    SentRecord,
    register_adapter,
)
from channels.models import Channel

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


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


def _client() -> httpx.AsyncClient:
    """One client per event loop: its connections are kept and reused, and its set-up (TLS
    context and all) is paid once, not for every message."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_SECONDS, limits=httpx.Limits(max_connections=200))
        _clients[loop] = client
    return client


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
        external_id = answer.get("external_id") if isinstance(answer, dict) else None
        return SendResult(external_id=str(external_id) if external_id else str(message.message_id))

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
        external_id = answer.get("external_id")
        return SentRecord(found=answer["found"], external_id=str(external_id) if external_id else None)

    async def _post(self, channel: Channel, payload: dict[str, Any]) -> Any:
        url = channel.config.get("webhook_url")
        if not url:
            raise ChannelError("the channel has no webhook_url", retryable=False)
        body = msgspec.json.encode(payload)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(channel.secret, body, int(time.time())),
            "User-Agent": "hub-webhook/1",
        }
        try:
            response = await _client().post(url, content=body, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            raise ChannelError(f"webhook unreachable: {type(error).__name__}", retryable=True) from error
        except httpx.HTTPError as error:
            # The request may have been read before the answer was lost.
            raise ChannelError(
                f"webhook did not answer: {type(error).__name__}", retryable=True, in_doubt=True
            ) from error
        if response.status_code == 429 or response.status_code >= 500:
            raise ChannelError(f"webhook answered {response.status_code}", retryable=True)
        if response.status_code >= 400:
            raise ChannelError(f"webhook refused with {response.status_code}", retryable=False)
        try:
            return response.json() if response.content else None
        except ValueError:
            return None


register_adapter(ApiChannelAdapter())
