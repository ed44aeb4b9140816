"""Background work of the inbox: sending replies, read receipts, waking snoozed conversations."""

from __future__ import annotations

import uuid

from hub.runtime import current
from hub.tasks import task
from inbox import services


@task("inbox.deliver_message")
async def deliver_message(organization_id: str, message_id: str) -> None:
    await services.deliver(uuid.UUID(organization_id), uuid.UUID(message_id))


@task("inbox.settle_reply")
async def settle_reply(organization_id: str, message_id: str) -> None:
    await services.settle_reply(uuid.UUID(organization_id), uuid.UUID(message_id))


@task("inbox.send_read_receipts")
async def send_read_receipts(
    organization_id: str, channel_id: str, recipient: str, external_ids: list[str]
) -> None:
    await services.send_read_receipts(
        uuid.UUID(organization_id), uuid.UUID(channel_id), recipient, external_ids
    )


@task("inbox.wake_snoozed")
async def wake_snoozed(organization_id: str, conversation_id: str) -> None:
    await services.wake_snoozed(uuid.UUID(organization_id), uuid.UUID(conversation_id))


@task("inbox.requeue_stalled", every_seconds=60)
async def requeue_stalled() -> int:
    return await services.requeue_stalled(current())


@task("inbox.change_on_channel")
async def change_on_channel(organization_id: str, message_id: str, action: str) -> None:
    await services.change_on_channel(uuid.UUID(organization_id), uuid.UUID(message_id), action)


@task("inbox.publish_who_wrote", every_seconds=15)
async def publish_who_wrote() -> int:
    return await services.publish_who_wrote(current())


@task("inbox.embed_article")
async def embed_article(organization_id: str, article_id: str) -> None:
    await services.embed_article(current(), uuid.UUID(organization_id), uuid.UUID(article_id))


@task("inbox.assistant_answer")
async def assistant_answer(organization_id: str, conversation_id: str, message_id: str) -> None:
    await services.assistant_answer(
        current(), uuid.UUID(organization_id), uuid.UUID(conversation_id), uuid.UUID(message_id)
    )
