"""What the API and the sockets carry of tickets and their comments, with each SLA target's
state."""

from __future__ import annotations

from hub import storage
from hub.models import Media
from hub.runtime import current
from tickets.models import SlaPolicy, Ticket, TicketChange, TicketComment
from tickets.schemas import (
    ChangeOut,
    CommentOut,
    SlaPolicyOut,
    SlaTarget,
    TicketOut,
)


def ticket_out(ticket: Ticket) -> TicketOut:
    return TicketOut(
        id=ticket.id,
        number=ticket.number,
        kind=ticket.kind,
        title=ticket.title,
        description=ticket.description,
        status=ticket.status,
        priority=ticket.priority,
        customer_id=ticket.customer_id,
        conversation_id=ticket.conversation_id,
        assignee_id=ticket.assignee_id,
        created_by=ticket.created_by,
        tags=list(ticket.tags or []),
        context=list(ticket.context or []),
        created_at=ticket.created_at,
        updated_at=ticket.updated_at,
        resolved_at=ticket.resolved_at,
        closed_at=ticket.closed_at,
        first_response=_target_out(ticket, "first_response"),
        resolution=_target_out(ticket, "resolution"),
    )


def _target_out(ticket: Ticket, target: str) -> SlaTarget | None:
    if ticket.sla_policy_id is None and getattr(ticket, f"{target}_due_at") is None:
        return None
    return SlaTarget(
        due_at=getattr(ticket, f"{target}_due_at"),
        left_seconds=getattr(ticket, f"{target}_left"),
        met_at=ticket.met_at(target),
        warned_at=getattr(ticket, f"{target}_warned_at"),
        breached_at=getattr(ticket, f"{target}_breached_at"),
    )


def comment_out(comment: TicketComment, media: list[Media]) -> CommentOut:
    settings = current().settings
    return CommentOut(
        id=comment.id,
        ticket_id=comment.ticket_id,
        author_id=comment.author_id,
        text=comment.text,
        public=comment.public,
        mentions=list(comment.mentions or []),
        attachments=[storage.describe(settings, m) for m in media],
        created_at=comment.created_at,
    )


def change_out(change: TicketChange) -> ChangeOut:
    return ChangeOut(
        id=change.id,
        kind=change.kind,
        actor_id=change.actor_id,
        details=dict(change.details or {}),
        created_at=change.created_at,
    )


def policy_out(policy: SlaPolicy) -> SlaPolicyOut:
    return SlaPolicyOut(
        priority=policy.priority,
        first_response_minutes=policy.first_response_minutes,
        resolution_minutes=policy.resolution_minutes,
        business_hours_only=policy.business_hours_only,
    )
