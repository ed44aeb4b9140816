"""Comments: for the team, or public replies that go to the customer through the chat."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from hub import events, storage
from hub.audience import people
from hub.auth import CurrentUser
from hub.db import HubAsyncSession, utcnow
from hub.errors import InvalidInput
from hub.i18n import N_
from hub.models import Media, User
from hub.pagination import paginate
from hub.realtime import push
from tickets.events import CommentAdded, Mentioned, PublicReplyWritten
from tickets.models import TicketAttachment, TicketComment
from tickets.schemas import CommentIn, CommentOut
from tickets.services.access import ROLES_SEEING_ALL, note_change, push_to_audience, ticket_for_user
from tickets.services.sla import fire_due, met_in_time
from tickets.views import comment_out


async def add_comment(
    session: HubAsyncSession, actor: CurrentUser, ticket_id: uuid.UUID, data: CommentIn
) -> tuple[TicketComment, list[Media]]:
    ticket = await ticket_for_user(session, actor, ticket_id)
    media = await storage.media_in_order(session, data.attachments)
    attachment_ids = [m.id for m in media]
    if not (data.text and data.text.strip()) and not media:
        raise InvalidInput(N_("A comment needs text or attachments."), field="text")
    if data.public and ticket.conversation_id is None:
        raise InvalidInput(
            N_("This ticket has no conversation, so a public reply cannot reach the customer."),
            field="public",
        )
    mentioned = list(dict.fromkeys(data.mentions))
    users = list(await session.scalars(select(User).where(User.id.in_(mentioned)))) if mentioned else []
    if len(users) != len(mentioned):
        raise InvalidInput(N_("A mentioned user is not in the organization."), field="mentions")
    now = utcnow()
    comment = TicketComment(
        ticket_id=ticket.id,
        author_id=actor.id,
        text=data.text,
        public=data.public,
        mentions=[str(u) for u in mentioned],
        created_at=now,
        updated_at=now,
    )
    session.add(comment)
    await session.flush()
    for position, item in enumerate(media):
        session.add(TicketAttachment(comment_id=comment.id, media_id=item.id, position=position))
    note_change(session, ticket, actor.id, "comment", comment_id=str(comment.id), public=data.public)
    if data.public:
        assert ticket.conversation_id is not None
        await events.publish(
            session,
            PublicReplyWritten(
                organization_id=ticket.organization_id,
                ticket_id=ticket.id,
                comment_id=comment.id,
                conversation_id=ticket.conversation_id,
                author_id=actor.id,
                text=data.text,
                attachment_ids=tuple(attachment_ids),
            ),
        )
        if ticket.first_responded_at is None:
            await fire_due(session, ticket, now)  # an overdue response breaches, even if the check is late
            ticket.first_responded_at = now
            note_change(
                session, ticket, actor.id, "first_response", met=met_in_time(ticket, "first_response")
            )
    ticket.updated_at = now
    out = comment_out(comment, media)
    push_to_audience(session, ticket, CommentAdded(ticket_id=ticket.id, comment=out))
    # Only those who may see the ticket hear that they were mentioned.
    told = [
        u.id for u in users if u.id != actor.id and (u.role in ROLES_SEEING_ALL or u.id == ticket.assignee_id)
    ]
    if told:
        push(
            session,
            Mentioned(ticket_id=ticket.id, number=ticket.number, comment=out, by=actor.id),
            people(told),
        )
    await session.commit()
    return comment, media


async def list_comments(
    session: HubAsyncSession, user: CurrentUser, ticket_id: uuid.UUID, *, cursor: str | None, limit: int
) -> tuple[list[CommentOut], str | None]:
    """Oldest first, as a conversation reads."""
    ticket = await ticket_for_user(session, user, ticket_id)
    rows, next_cursor = await paginate(
        session,
        select(TicketComment).where(TicketComment.ticket_id == ticket.id),
        TicketComment.id,
        cursor=cursor,
        limit=limit,
        newest_first=False,
    )
    comments = [row[0] for row in rows]
    media: dict[uuid.UUID, list[Media]] = {c.id: [] for c in comments}
    if comments:
        for attachment, item in await session.execute(
            select(TicketAttachment, Media)
            .join(Media, Media.id == TicketAttachment.media_id)
            .where(TicketAttachment.comment_id.in_(media))
            .order_by(TicketAttachment.position)
        ):
            media[attachment.comment_id].append(item)
    return [comment_out(c, media[c.id]) for c in comments], next_cursor
