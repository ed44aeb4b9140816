"""Replies: queued in the transaction that writes them, sent through the channel with the
database let go of, retried when the channel could not take them, settled from the channel's
record when their fate is in doubt, and picked up again after a crash."""

from __future__ import annotations

import contextlib
import time
import uuid
from datetime import timedelta

import msgspec
import structlog
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from channels.adapters import (
    SETTLE_MARGIN,
    STATE_NAMES,
    ChannelError,
    OutboundAttachment,
    OutboundMessage,
    SendResult,
    SentRecord,
    adapter_for,
    send_message,
)
from channels.models import Channel
from crm.models import Customer
from hub import events, storage
from hub.auth import CurrentUser
from hub.billing.services.limits import require_room
from hub.db import HubAsyncSession, new_id, utcnow
from hub.errors import Conflict, InvalidInput
from hub.i18n import N_, Term
from hub.models import Media
from hub.runtime import Runtime, current
from hub.services import count_usage
from hub.tasks import kick, schedule
from inbox.events import MessageSent, ReplyQueued
from inbox.models import AssistantThread, Conversation, Message, MessageAttachment
from inbox.services.conversations import conversation_for_user
from inbox.views import announce_status, attachments_of, message_out, message_preview, push_to_audience
from tickets.events import PublicReplyWritten

log = structlog.get_logger(__name__)

# Retries of a reply the channel could not take: about six hours in all, then it is failed.
RETRY_DELAYS = [10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 3600, 3600, 3600, 3600]


async def reply(
    session: HubAsyncSession,
    user: CurrentUser,
    conversation_id: uuid.UUID,
    *,
    text: str | None,
    private: bool,
    reply_to: uuid.UUID | None,
    attachment_ids: list[uuid.UUID] | None = None,
) -> Message:
    """Store the reply as queued (or a private note as final) and hand it to the channel after commit."""
    conversation, _customer = await conversation_for_user(session, user, conversation_id)
    media = await storage.media_in_order(session, attachment_ids or [])
    if not text and not media:
        raise InvalidInput(N_("A message needs text or attachments."), field="text")
    if not private:  # a note stays in the hub: only what is sent counts
        await require_room(session, "messages_per_month")
    if reply_to is not None:
        quoted = await session.get(Message, reply_to)
        if quoted is None or quoted.conversation_id != conversation.id:
            raise InvalidInput(N_("The quoted message is not in this conversation."), field="reply_to")
    if not private:  # a person of the team writes: the assistant leaves the conversation to them
        await stop_for_conversation(session, conversation.id)
    return await queue_reply(
        session, conversation, sender_id=user.id, text=text, private=private, reply_to=reply_to, media=media
    )


async def stop_for_conversation(session: HubAsyncSession, conversation_id: uuid.UUID) -> None:
    """A person of the team wrote to the customer: the assistant leaves the conversation to them."""
    await session.execute(
        update(AssistantThread)
        .where(AssistantThread.conversation_id == conversation_id, AssistantThread.state == "answering")
        .values(state="stopped", updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


async def send_ticket_reply(session: HubAsyncSession, reply: PublicReplyWritten) -> None:
    """A ticket's public reply, sent in its conversation under the comment's id: once, however
    often the event arrives."""
    if await session.get(Message, reply.comment_id) is not None:
        return
    conversation = await session.get(Conversation, reply.conversation_id)
    if conversation is None:
        return  # the conversation was deleted meanwhile
    media = list(await session.scalars(select(Media).where(Media.id.in_(reply.attachment_ids))))
    media.sort(key=lambda m: reply.attachment_ids.index(m.id))
    # A disconnected channel: the reply is kept as failed, with its reason, as an agent's would be.
    with contextlib.suppress(Conflict):
        await queue_reply(
            session,
            conversation,
            sender_id=reply.author_id,
            text=reply.text,
            private=False,
            reply_to=None,
            media=media,
            message_id=reply.comment_id,
        )


async def queue_reply(
    session: HubAsyncSession,
    conversation: Conversation,
    *,
    sender_id: uuid.UUID | None,
    text: str | None,
    private: bool,
    reply_to: uuid.UUID | None,
    media: list[Media],
    message_id: uuid.UUID | None = None,
    by_assistant: bool = False,
) -> Message:
    channel = await session.get_one(Channel, conversation.channel_id)
    refused = not private and channel.state != "ready"
    message = Message(
        id=message_id or new_id(),
        conversation_id=conversation.id,
        channel_id=conversation.channel_id,
        direction="outbound",
        kind="note" if private else media[0].kind if media else "text",
        text=text,
        status="failed" if refused else "sent" if private else "queued",
        failure_reason=f"channel is {channel.state}" if refused else None,
        sender_user_id=sender_id,
        reply_to_id=reply_to,
        private=private,
        by_assistant=by_assistant,
    )
    session.add(message)
    if not private:
        conversation.last_message_at = utcnow()
        conversation.last_message_preview = message_preview(text, message.kind)
    await session.flush()
    for position, item in enumerate(media):
        session.add(MessageAttachment(message_id=message.id, media_id=item.id, position=position))
    push_to_audience(
        session, conversation, MessageSent(chat_id=conversation.id, message=message_out(message, media))
    )
    if refused:
        await session.commit()  # kept, as failed with its reason, so nothing typed is lost
        refuse_disconnected(channel)
    if not private:
        organization_id, message_id = conversation.organization_id, message.id
        if not by_assistant:  # the assistant's answers are not the team's
            await events.publish(
                session,
                ReplyQueued(
                    organization_id=organization_id,
                    conversation_id=conversation.id,
                    message_id=message_id,
                    sender_user_id=sender_id,
                    at=message.created_at,
                ),
            )

        async def hand_to_channel() -> None:
            await kick(
                "inbox.deliver_message", organization_id=str(organization_id), message_id=str(message_id)
            )

        session.after_commit(hand_to_channel)
    await session.commit()
    return message


async def deliver(organization_id: uuid.UUID, message_id: uuid.UUID) -> None:
    """Send one queued reply through its channel; a crash before this ran is picked up by the sweep.

    The database is let go of before the channel is called and taken again for the outcome, so a
    slow or hanging receiver holds nothing but its own channel's send slots (SQLite's one shared
    connection least of all). A send whose outcome is lost (a timeout or a reset after the request
    went out) is never repeated blind: the channel's own record settles it, or it is `unknown`."""
    runtime = current()
    async with runtime.db.session(organization_id) as session:
        channel_id = await session.scalar(
            select(Message.channel_id).where(Message.id == message_id, Message.status == "queued")
        )
    if channel_id is None:
        return  # sent, or being sent, already
    # The slot first, then the claim: a reply is `sending` only while it is really under way, so
    # the sweep of stalled sends never takes one that is still waiting its turn for one.
    async with runtime.send_slots.taken(channel_id):
        try:
            claimed = await _claim_reply(runtime, organization_id, message_id)
            if claimed is None:
                return
            channel, outbound = claimed
            if channel.state != "ready":
                # A dropped connection comes back by itself; a logged-out number needs a person.
                raise ChannelError(f"channel is {channel.state}", retryable=channel.state != "logged_out")
            try:
                result: SendResult | SentRecord = await send_message(channel, outbound)
            except ChannelError as error:
                if not error.in_doubt:
                    raise
                result = await _settle(channel, message_id, error)
        except ChannelError as error:
            async with runtime.db.session(organization_id) as session:
                await _send_failed(session, message_id, error)
            return
    async with runtime.db.session(organization_id) as session:
        await _send_done(session, message_id, result)


async def _claim_reply(
    runtime: Runtime, organization_id: uuid.UUID, message_id: uuid.UUID
) -> tuple[Channel, OutboundMessage] | None:
    """Move a reply from queued to sending (only one deliverer can) and gather what the channel
    needs; the session is closed again before anything is sent."""
    # Over within HUB_SEND_SECONDS of its claim: the sweep settles a `sending` one only after.
    finish_by = time.time() + runtime.settings.send_seconds
    async with runtime.db.session(organization_id) as session:
        claimed = await session.execute(
            update(Message)
            .where(Message.id == message_id, Message.status == "queued")
            .values(status="sending", send_attempts=Message.send_attempts + 1)
            .execution_options(synchronize_session=False)
        )
        await session.commit()
        if claimed.rowcount == 0:  # type: ignore[attr-defined]  # an UPDATE's result has rowcount; the stubs type it as Result
            return None
        message = await session.get_one(Message, message_id)
        conversation = await session.get_one(Conversation, message.conversation_id)
        channel = await session.get_one(Channel, message.channel_id)
        customer = await session.get_one(Customer, conversation.customer_id)
        quoted_external = None
        if message.reply_to_id:
            quoted_external = await session.scalar(
                select(Message.external_id).where(Message.id == message.reply_to_id)
            )
        media = (await attachments_of(session, [message.id])).get(message.id, [])
        recipient = customer.phone or await channel_identity(session, customer.id, channel.id)
        await session.commit()
    outbound = await _outbound(runtime, message, recipient, media, quoted_external)
    return channel, msgspec.structs.replace(outbound, finish_by=finish_by)


async def _outbound(
    runtime: Runtime, message: Message, recipient: str, media: list[Media], quoted_external: str | None
) -> OutboundMessage:
    store = storage.media_store(runtime.settings)
    public = runtime.settings.public_url
    return OutboundMessage(
        message_id=message.id,
        conversation_id=message.conversation_id,
        recipient=recipient,
        text=message.text,
        kind=message.kind,
        attachments=tuple(
            [
                OutboundAttachment(
                    kind=m.kind,
                    content_type=m.content_type,
                    filename=m.filename,
                    data=await store.read(m.key),
                    url=storage.media_link(runtime.settings, public, m.id, seconds=86400) if public else None,
                )
                for m in media
            ]
        ),
        reply_to_external_id=quoted_external,
    )


IN_DOUBT = "it may have reached the channel: the channel could not confirm it"


async def _settle(channel: Channel, message_id: uuid.UUID, error: ChannelError) -> SentRecord:
    """Ask the channel's own record whether a send whose answer was lost arrived. Found: sent.
    Not found: the send is retried like any other. Cannot tell: `unknown`, for the agent to see."""
    try:
        record = await adapter_for(channel.kind).find_sent(channel, message_id)
    except Exception as failure:  # asking is best effort
        log.warning("channel record unavailable", channel=str(channel.id), error=repr(failure)[:200])
        record = None
    if record is None:
        raise ChannelError(IN_DOUBT, retryable=False, in_doubt=True) from error
    if not record.found:
        raise ChannelError(error.reason, retryable=True) from error
    return record


async def _send_done(
    session: HubAsyncSession, message_id: uuid.UUID, result: SendResult | SentRecord
) -> None:
    """The reply went out: sent, under the channel's id for it when that id is the channel's alone
    (an answer repeating another message's id must not clash, or the sweep would resend it)."""
    message = await session.get_one(Message, message_id)
    conversation = await session.get_one(Conversation, message.conversation_id)
    external_id = result.external_id or str(message.id)
    taken = await session.scalar(
        select(Message.id).where(
            Message.channel_id == message.channel_id,
            Message.external_id == external_id,
            Message.id != message.id,
        )
    )
    if taken is not None:
        log.warning("channel answered an id it gave before", message_id=str(message.id))
        external_id = str(message.id)
    message.status, message.external_id, message.failure_reason = "sent", external_id, None
    await count_usage(session, "messages_sent")
    await announce_status(session, conversation, message)
    try:
        await session.commit()
    except IntegrityError:  # the same id taken meanwhile by another message
        await session.rollback()
        message = await session.get_one(Message, message_id)
        conversation = await session.get_one(Conversation, message.conversation_id)
        message.status, message.external_id, message.failure_reason = "sent", str(message.id), None
        await count_usage(session, "messages_sent")
        await announce_status(session, conversation, message)
        await session.commit()


async def channel_identity(session: HubAsyncSession, customer_id: uuid.UUID, channel_id: uuid.UUID) -> str:
    from crm.models import CustomerIdentity

    identity = await session.scalar(
        select(CustomerIdentity.external_id).where(
            CustomerIdentity.customer_id == customer_id, CustomerIdentity.channel_id == channel_id
        )
    )
    return identity or ""


async def _send_failed(session: HubAsyncSession, message_id: uuid.UUID, error: ChannelError) -> None:
    message = await session.get_one(Message, message_id)
    conversation = await session.get_one(Conversation, message.conversation_id)
    attempt = message.send_attempts
    if error.retryable and attempt <= len(RETRY_DELAYS):
        message.status, message.failure_reason = "queued", error.reason[:500]
        await schedule(
            session,
            "inbox.deliver_message",
            utcnow() + retry_delay(attempt),
            key=f"inbox.send:{message.id}",
            organization_id=str(conversation.organization_id),
            message_id=str(message.id),
        )
        log.info("reply will be retried", message_id=str(message.id), attempt=attempt, reason=error.reason)
        await session.commit()
        return
    # In doubt and unconfirmed: `unknown`, never sent again by the hub on its own.
    message.status = "unknown" if error.in_doubt else "failed"
    message.failure_reason = error.reason[:500]
    await announce_status(session, conversation, message)
    await session.commit()


def retry_delay(attempts: int) -> timedelta:
    """How long a reply the channel refused `attempts` times waits before its next try."""
    return timedelta(seconds=RETRY_DELAYS[attempts - 1]) if attempts else timedelta(0)


async def requeue_stalled(runtime: Runtime, older_than: timedelta = timedelta(minutes=2)) -> int:
    """Replies left queued or sending by a process that died. A queued one is handed to the
    channel again; a sending one may have gone out, so it is settled (`inbox.settle_reply`)
    from the channel's record instead of being sent blind, once its send is surely over. A reply
    waiting for a retry is stalled only once its retry is overdue too."""
    now = utcnow()
    over_before = now - timedelta(seconds=runtime.settings.send_seconds) - SETTLE_MARGIN
    async with runtime.db.system_session() as session:
        candidates = (
            await session.execute(
                select(
                    Message.id,
                    Message.organization_id,
                    Message.status,
                    Message.send_attempts,
                    Message.updated_at,
                ).where(
                    Message.direction == "outbound",
                    Message.status.in_(("queued", "sending")),
                    Message.updated_at < now - older_than,
                )
            )
        ).all()
    rows = [
        row
        for row in candidates
        if (row.status == "sending" and row.updated_at < over_before)
        or (row.status == "queued" and row.updated_at + retry_delay(row.send_attempts) + older_than < now)
    ]
    for row in rows:
        task = "inbox.settle_reply" if row.status == "sending" else "inbox.deliver_message"
        await kick(task, organization_id=str(row.organization_id), message_id=str(row.id))
    return len(rows)


async def settle_reply(organization_id: uuid.UUID, message_id: uuid.UUID) -> None:
    """A reply a dead process left `sending`: the channel's record says whether it arrived; not
    found, it is sent again; the channel cannot tell, it is `unknown` for the agent to see."""
    runtime = current()
    async with runtime.db.session(organization_id) as session:
        message = await session.get(Message, message_id)
        if message is None or message.status != "sending":
            return
        channel = await session.get_one(Channel, message.channel_id)
        await session.commit()
    try:
        async with runtime.send_slots.taken(channel.id):
            record = await _settle(
                channel,
                message_id,
                ChannelError("the sending process stopped", retryable=True, in_doubt=True),
            )
    except ChannelError as error:
        async with runtime.db.session(organization_id) as session:
            if error.retryable:  # not found: it never arrived, so it goes out again
                await session.execute(
                    update(Message)
                    .where(Message.id == message_id, Message.status == "sending")
                    .values(status="queued")
                    .execution_options(synchronize_session=False)
                )

                async def hand_to_channel() -> None:
                    await kick(
                        "inbox.deliver_message",
                        organization_id=str(organization_id),
                        message_id=str(message_id),
                    )

                session.after_commit(hand_to_channel)
                await session.commit()
            else:
                await _send_failed(session, message_id, error)
        return
    async with runtime.db.session(organization_id) as session:
        await _send_done(session, message_id, record)


def refuse_disconnected(channel: Channel) -> None:
    if channel.state != "ready":
        raise Conflict(
            N_("The channel {name} is {state}; messages cannot be sent now."),
            field="channel",
            name=channel.name,
            state=STATE_NAMES.get(channel.state, Term(channel.state)),
        )
