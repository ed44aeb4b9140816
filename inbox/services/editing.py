"""Editing, deleting and forwarding the team's own messages, here and on the channel."""

from __future__ import annotations

import uuid

import structlog

from channels.adapters import ChannelError, adapter_for
from channels.models import Channel
from crm.models import Customer
from hub.auth import CurrentUser
from hub.db import HubAsyncSession, utcnow
from hub.errors import Conflict, InvalidInput, NotFound
from hub.i18n import N_
from hub.runtime import current
from hub.tasks import kick
from inbox.events import MessageDeleted, MessageUpdated
from inbox.models import Conversation, Message
from inbox.services.conversations import conversation_for_user
from inbox.services.replies import channel_identity, reply
from inbox.views import message_with_media, push_to_audience

log = structlog.get_logger(__name__)


async def _own_reply(
    session: HubAsyncSession, user: CurrentUser, message_id: uuid.UUID
) -> tuple[Message, Conversation]:
    message = await session.get(Message, message_id)
    if message is None:
        raise NotFound()
    conversation, _ = await conversation_for_user(session, user, message.conversation_id)
    if message.direction != "outbound" or message.sender_user_id != user.id or message.deleted_at is not None:
        raise Conflict(N_("Only your own messages can be changed."), field="message_id")
    return message, conversation


async def edit_message(
    session: HubAsyncSession, user: CurrentUser, message_id: uuid.UUID, text: str
) -> Message:
    message, conversation = await _own_reply(session, user, message_id)
    message.text, message.edited_at = text, utcnow()
    push_to_audience(
        session,
        conversation,
        MessageUpdated(chat_id=conversation.id, message=await message_with_media(session, message)),
    )
    if not message.private and message.external_id:
        _after_commit_on_channel(session, "edit", conversation, message)
    await session.commit()
    return message


async def delete_message(session: HubAsyncSession, user: CurrentUser, message_id: uuid.UUID) -> Message:
    message, conversation = await _own_reply(session, user, message_id)
    message.deleted_at = utcnow()
    push_to_audience(session, conversation, MessageDeleted(chat_id=conversation.id, message_id=message.id))
    if not message.private and message.external_id:
        _after_commit_on_channel(session, "delete", conversation, message)
    await session.commit()
    return message


def _after_commit_on_channel(
    session: HubAsyncSession, action: str, conversation: Conversation, message: Message
) -> None:
    organization_id, message_id = conversation.organization_id, message.id

    async def hand_to_channel() -> None:
        await kick(
            "inbox.change_on_channel",
            organization_id=str(organization_id),
            message_id=str(message_id),
            action=action,
        )

    session.after_commit(hand_to_channel)


async def change_on_channel(organization_id: uuid.UUID, message_id: uuid.UUID, action: str) -> None:
    """Carry an edit or a deletion to the channel; the inbox already shows it either way."""
    async with current().db.session(organization_id) as session:
        message = await session.get_one(Message, message_id)
        conversation = await session.get_one(Conversation, message.conversation_id)
        channel = await session.get_one(Channel, message.channel_id)
        customer = await session.get_one(Customer, conversation.customer_id)
        recipient = customer.phone or await channel_identity(session, customer.id, channel.id)
    if channel.state != "ready" or not message.external_id:
        return
    adapter = adapter_for(channel.kind)
    try:
        if action == "edit":
            await adapter.edit(
                channel, recipient=recipient, external_id=message.external_id, text=message.text or ""
            )
        else:
            await adapter.delete(channel, recipient=recipient, external_id=message.external_id)
    except ChannelError as error:
        log.warning(
            "change not carried to the channel",
            action=action,
            message_id=str(message_id),
            reason=error.reason,
        )


async def forward_message(
    session: HubAsyncSession, user: CurrentUser, message_id: uuid.UUID, target_conversation_id: uuid.UUID
) -> Message:
    original = await session.get(Message, message_id)
    if original is None or original.deleted_at is not None or original.private:
        raise NotFound()
    await conversation_for_user(session, user, original.conversation_id)  # the user may read the original
    if not original.text:
        raise InvalidInput(N_("Only messages with text can be forwarded for now."), field="message_id")
    return await reply(
        session, user, target_conversation_id, text=original.text, private=False, reply_to=None
    )
