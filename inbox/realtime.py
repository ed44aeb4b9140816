"""What clients of the inbox send over the socket."""

from __future__ import annotations

import uuid
from typing import Any

from hub.auth import CurrentUser
from hub.errors import InvalidInput
from hub.i18n import N_
from hub.realtime import on_client_event
from hub.runtime import Runtime
from inbox import services


@on_client_event("markAsRead")
async def mark_as_read(runtime: Runtime, user: CurrentUser, chat_id: Any) -> dict[str, Any]:
    """`markAsRead(chatId)`: the conversation is read; the user's other tabs hear of it."""
    try:
        conversation_id = uuid.UUID(str(chat_id))
    except ValueError:
        raise InvalidInput(N_("This is not a valid identifier."), field="chatId") from None
    async with runtime.db.session(user.organization_id) as session:
        conversation = await services.mark_read(session, user, conversation_id)
    return {"chatId": str(conversation.id), "unread_count": conversation.unread_count}
