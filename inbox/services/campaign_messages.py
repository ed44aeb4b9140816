"""A campaign's messages join their customers' conversations, as sent messages of the team."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from sqlalchemy import bindparam, insert, or_, select, update

from campaigns.events import CampaignMessagesSent
from hub.audience import chat_readers
from hub.db import HubAsyncSession, new_id, one_of, row_values, table_of, utcnow
from hub.models import Media
from hub.realtime import push
from inbox.events import MessageSent
from inbox.models import Conversation, Message, MessageAttachment
from inbox.views import message_out, message_preview

log = structlog.get_logger(__name__)


async def record_campaign_messages(session: HubAsyncSession, sent: CampaignMessagesSent) -> None:
    """A campaign's sent messages join their customers' conversations, so an agent sees what the
    customer is answering. A conversation a campaign starts is resolved: it waits in no one's
    open list until the customer writes back, which reopens it. A batch is a few plain
    statements, whatever its size: campaigns send many."""
    org = session.organization_id
    ids = [item.message_id for item in sent.messages]
    stored = set(await session.scalars(select(Message.id).where(one_of(session, Message.id, ids))))
    todo = [item for item in sent.messages if item.message_id not in stored]
    if not todo:
        return
    pairs = {(item.customer_id, item.channel_id) for item in todo}
    found = (
        await session.execute(
            select(
                Conversation.customer_id,
                Conversation.channel_id,
                Conversation.id,
                Conversation.status,
                Conversation.assignee_id,
            ).where(
                one_of(session, Conversation.customer_id, {customer for customer, _ in pairs}),
                one_of(session, Conversation.channel_id, {channel for _, channel in pairs}),
            )
        )
    ).all()
    conversations = {
        (row.customer_id, row.channel_id): (row.id, row.status, row.assignee_id)
        for row in found
        if (row.customer_id, row.channel_id) in pairs
    }
    last: dict[tuple[uuid.UUID, uuid.UUID], Any] = {}
    for item in todo:
        key = (item.customer_id, item.channel_id)
        if key not in last or last[key].at < item.at:
            last[key] = item
    media_ids = {item.media_id for item in todo if item.media_id}
    media = (
        {m.id: m for m in await session.scalars(select(Media).where(one_of(session, Media.id, media_ids)))}
        if media_ids
        else {}
    )
    kind = {item.message_id: media[item.media_id].kind if item.media_id in media else "text" for item in todo}
    now = utcnow()
    new_conversations = []
    new_keys = pairs - conversations.keys()
    for key in new_keys:
        newest = last[key]
        conversation_id = new_id()
        conversations[key] = (conversation_id, "resolved", None)
        new_conversations.append(
            {
                "id": conversation_id,
                "organization_id": org,
                "customer_id": key[0],
                "channel_id": key[1],
                "status": "resolved",
                "last_message_at": newest.at,
                "last_message_preview": message_preview(newest.text, kind[newest.message_id]),
                "unread_count": 0,
                "created_at": now,
                "updated_at": now,
            }
        )
    if new_conversations:
        await session.execute(insert(table_of(Conversation)), new_conversations)
    touched = [
        {
            "c_org": org,
            "c_id": conversations[key][0],
            "c_at": item.at,
            "c_preview": message_preview(item.text, kind[item.message_id]),
        }
        for key, item in last.items()
        if key not in new_keys
    ]
    if touched:
        table = table_of(Conversation)
        await session.execute(
            update(table)
            .where(
                table.c.organization_id == bindparam("c_org"),
                table.c.id == bindparam("c_id"),
                or_(table.c.last_message_at.is_(None), table.c.last_message_at < bindparam("c_at")),
            )
            .values(last_message_at=bindparam("c_at"), last_message_preview=bindparam("c_preview")),
            touched,
        )
    messages = [
        Message(
            id=item.message_id,
            organization_id=org,
            conversation_id=conversations[(item.customer_id, item.channel_id)][0],
            channel_id=item.channel_id,
            direction="outbound",
            kind=kind[item.message_id],
            text=item.text,
            status="sent",
            external_id=item.external_id,
            private=False,
            send_attempts=1,
            created_at=item.at,
            updated_at=item.at,
        )
        for item in todo
    ]
    await session.execute(insert(table_of(Message)), [row_values(message) for message in messages])
    attachments = [
        {
            "id": new_id(),
            "organization_id": org,
            "message_id": item.message_id,
            "media_id": item.media_id,
            "position": 0,
            "created_at": now,
            "updated_at": now,
        }
        for item in todo
        if item.media_id in media
    ]
    if attachments:
        await session.execute(insert(table_of(MessageAttachment)), attachments)
    by_id = {item.message_id: item for item in todo}
    for message in messages:
        item = by_id[message.id]
        conversation_id, status, assignee_id = conversations[(item.customer_id, item.channel_id)]
        if status == "resolved":
            continue  # nobody is working on it; the message is there when someone opens it
        shown = [media[item.media_id]] if item.media_id in media else []
        push(
            session,
            MessageSent(chat_id=conversation_id, message=message_out(message, shown)),
            chat_readers(assignee_id),
        )
    await session.commit()
