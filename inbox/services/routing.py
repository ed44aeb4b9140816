"""Automatic assignment: new conversations go round the agents who are online, up to each
agent's cap, by the organization's inbox settings."""

from __future__ import annotations

import bisect
import functools
import operator
import uuid
from typing import Any, NamedTuple

import structlog
from sqlalchemy import and_, bindparam, func, select, update

from hub import events
from hub.db import HubAsyncSession, organization_row, table_of
from hub.kept import Kept
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
    kept_rounds.forget(settings.organization_id)  # this process assigns by the new settings at once
    return settings


class Round(NamedTuple):
    """An organization's round-robin settings and whose turn it was, as this process saw them."""

    auto_assign: bool
    agent_cap: int
    last_assignee_id: uuid.UUID | None


# Asked on every first message, so each process keeps them a few seconds and moves its own copy's
# turn as it assigns; another process's turns reach it when the copy expires (the turn is written
# each time, for them and for restarts), so two processes may now and then pick the same agent.
kept_rounds: Kept[uuid.UUID, Round] = Kept(seconds=5.0)


ASSIGN_BATCH = 8
BY_NUMBER = operator.attrgetter("int")


@functools.cache
def _statements() -> dict[str, Any]:
    """The round's plain statements, built once (building them costs more than running them).
    Each names the organization; on PostgreSQL row security applies as well."""
    settings, users = table_of(InboxSettings), table_of(User)
    busy = table_of(Conversation).alias("busy")  # an agent's open conversations
    org = bindparam("org", type_=settings.c.organization_id.type)
    return {
        "settings": select(settings.c.auto_assign, settings.c.agent_cap, settings.c.last_assignee_id)
        .where(settings.c.organization_id == org)
        .limit(1),
        "with_room": select(users.c.id)
        .select_from(
            users.outerjoin(
                busy,
                and_(
                    busy.c.assignee_id == users.c.id,
                    busy.c.organization_id == org,
                    busy.c.status.in_(("open", "pending")),
                ),
            )
        )
        .where(
            users.c.id.in_(bindparam("batch", expanding=True)),
            users.c.organization_id == org,
            users.c.role == "agent",
            users.c.is_active.is_(True),
        )
        .group_by(users.c.id)
        .having(func.count(busy.c.id) < bindparam("cap")),
        "turn_taken": update(settings)
        .where(settings.c.organization_id == org)
        .values(last_assignee_id=bindparam("chosen", type_=settings.c.last_assignee_id.type)),
    }


async def assign_in_turn(runtime: Runtime, session: HubAsyncSession, conversation: Conversation) -> None:
    """Round-robin among the agents online now who have room under the cap; none, and it waits.
    The conversation's new assignee is set on the object, for the caller to write."""
    statements = _statements()
    connection = await session.connection()
    org = conversation.organization_id
    settings = kept_rounds.get(org)
    if settings is None:
        row = (await connection.execute(statements["settings"], {"org": org})).first()
        settings = kept_rounds.put(org, Round(*row) if row is not None else Round(False, 0, None))
    if not settings.auto_assign or runtime.pusher is None:
        return
    # Ordered by their ids' numbers: comparing UUIDs themselves runs Python code for each pair.
    online = sorted(await runtime.pusher.online_in_role(org, "agent"), key=BY_NUMBER)
    if not online:
        return
    # Their turn order: those after the last one chosen, then from the start. Asked about a few at
    # a time, so a large team costs no more than a small one when the next agents have room.
    last = settings.last_assignee_id
    after = bisect.bisect_right(online, last.int, key=BY_NUMBER) if last is not None else 0
    turn = online[after:] + online[:after]
    chosen = None
    for start in range(0, len(turn), ASSIGN_BATCH):
        batch = turn[start : start + ASSIGN_BATCH]
        with_room = set(
            await connection.scalars(
                statements["with_room"], {"org": org, "batch": batch, "cap": settings.agent_cap}
            )
        )
        chosen = next((agent for agent in batch if agent in with_room), None)
        if chosen is not None:
            break
    if chosen is None:
        return
    await connection.execute(statements["turn_taken"], {"org": org, "chosen": chosen})
    kept_rounds.change(org, settings._replace(last_assignee_id=chosen))
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
