"""AI help on a ticket: its description and comments summarized for the reader, in their
language, written to their sockets alone (`hub.ai.ask`)."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from hub import ai
from hub.auth import CurrentUser
from hub.db import HubAsyncSession
from hub.errors import InvalidInput
from hub.i18n import N_
from hub.runtime import Runtime
from tickets.models import TicketComment
from tickets.services.access import ticket_for_user

RECENT_COMMENTS = 60


async def summarize_ticket(
    runtime: Runtime, session: HubAsyncSession, user: CurrentUser, ticket_id: uuid.UUID
) -> str:
    """What the ticket is about, what was done and what is left, from its title, description and
    newest comments (those for the team and the replies to the customer alike: the reader may
    read them all); the request's id."""
    endpoint = await ai.check_request(runtime, session)
    ticket = await ticket_for_user(session, user, ticket_id)
    comments = list(
        await session.scalars(
            select(TicketComment)
            .where(TicketComment.ticket_id == ticket.id, TicketComment.text.is_not(None))
            .order_by(TicketComment.id.desc())
            .limit(RECENT_COMMENTS)
        )
    )
    lines = [f"Title: {ticket.title}"]
    if ticket.description:
        lines.append(f"Description: {ticket.description}")
    size = sum(len(line) for line in lines)
    kept: list[str] = []
    for comment in comments:  # newest first, up to what a request may carry
        line = f"{'Reply to the customer' if comment.public else 'Team comment'}: {comment.text}"
        size += len(line)
        if size > ai.MAX_PROMPT_CHARACTERS:
            break
        kept.append(line)
    if not kept and not ticket.description:
        raise InvalidInput(N_("There is nothing to summarize yet."), field="ticket")
    instruction = (
        "Summarize this support ticket for a colleague in three to five short lines: what the "
        "customer needs, what was done, what is left."
    )
    transcript = "\n".join([*lines, *reversed(kept)])
    return ai.ask(
        runtime,
        user,
        endpoint,
        [ai.system_message(instruction, ai.reader_language(user)), {"role": "user", "content": transcript}],
    )
