"""Automatic assignment: new conversations go round the agents who are online, up to each
agent's cap, by the organization's inbox settings."""

from __future__ import annotations

import structlog
from sqlalchemy import and_, func, select
from sqlalchemy.orm import aliased

from hub import events
from hub.db import HubAsyncSession, organization_row
from hub.models import User
from hub.runtime import Runtime
from inbox.events import ConversationAssigned
from inbox.models import Conversation, InboxSettings

log = structlog.get_logger(__name__)


async def inbox_settings(session: HubAsyncSession) -> InboxSettings:
    return await organization_row(session, InboxSettings)


async def update_inbox_settings(
    session: HubAsyncSession, *, auto_assign: bool | None, agent_cap: int | None
) -> InboxSettings:
    settings = await inbox_settings(session)
    if auto_assign is not None:
        settings.auto_assign = auto_assign
    if agent_cap is not None:
        settings.agent_cap = agent_cap
    await session.commit()
    return settings


ASSIGN_BATCH = 8
_BUSY = aliased(Conversation, name="busy")  # an agent's open conversations; built once, it is costly


async def assign_in_turn(runtime: Runtime, session: HubAsyncSession, conversation: Conversation) -> None:
    """Round-robin among the agents online now who have room under the cap; none, and it waits."""
    settings = await session.scalar(select(InboxSettings))
    if settings is None or not settings.auto_assign or runtime.pusher is None:
        return
    online = sorted(await runtime.pusher.online_in_role(conversation.organization_id, "agent"))
    if not online:
        return
    # Their turn order: those after the last one chosen, then from the start. Asked about a few at
    # a time, so a large team costs no more than a small one when the next agents have room.
    last = settings.last_assignee_id
    turn = [agent for agent in online if last is not None and agent > last]
    turn += [agent for agent in online if last is None or agent <= last]
    busy = _BUSY
    chosen = None
    for start in range(0, len(turn), ASSIGN_BATCH):
        batch = turn[start : start + ASSIGN_BATCH]
        with_room = set(
            await session.scalars(
                select(User.id)
                .outerjoin(busy, and_(busy.assignee_id == User.id, busy.status.in_(("open", "pending"))))
                .where(User.id.in_(batch), User.role == "agent", User.is_active.is_(True))
                .group_by(User.id)
                .having(func.count(busy.id) < settings.agent_cap)
            )
        )
        chosen = next((agent for agent in batch if agent in with_room), None)
        if chosen is not None:
            break
    if chosen is None:
        return
    settings.last_assignee_id = chosen
    conversation.assignee_id = chosen
    await events.publish(
        session,
        ConversationAssigned(
            organization_id=conversation.organization_id,
            conversation_id=conversation.id,
            assignee_id=chosen,
            previous_assignee_id=None,
        ),
    )
