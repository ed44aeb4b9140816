"""Searching the messages of the conversations a person may read."""

from __future__ import annotations

import structlog
from sqlalchemy import select

from hub.auth import CurrentUser
from hub.db import HubAsyncSession
from inbox.models import Conversation, Message
from inbox.services.conversations import visible_conversations

log = structlog.get_logger(__name__)


async def search_messages(
    session: HubAsyncSession, user: CurrentUser, *, query: str, cursor: str | None, limit: int
) -> tuple[list[Message], str | None]:
    """Messages whose text matches, in conversations the user may see, newest first."""
    from hub.pagination import paginate

    visible = visible_conversations(user).with_only_columns(Conversation.id)
    statement = select(Message).where(
        Message.conversation_id.in_(visible),
        Message.deleted_at.is_(None),
        Message.text.ilike(f"%{query.strip()}%"),
    )
    rows, next_cursor = await paginate(session, statement, Message.id, cursor=cursor, limit=limit)
    return [row[0] for row in rows], next_cursor
