"""What tickets publish: their public contract for the inbox and others."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar

from hub.events import Event, event_type
from hub.realtime import SocketEvent, socket_event
from tickets.schemas import CommentOut, TicketIn, TicketOut


@event_type
class PublicReplyWritten(Event, frozen=True, kw_only=True):
    """A public reply on a ticket, to be sent to the customer in the ticket's conversation; the
    message sent takes the comment's id, so a repeated delivery of this event sends it once."""

    name: ClassVar[str] = "tickets.public_reply_written"
    ticket_id: uuid.UUID
    comment_id: uuid.UUID
    conversation_id: uuid.UUID
    author_id: uuid.UUID | None
    text: str | None
    attachment_ids: tuple[uuid.UUID, ...] = ()


# What tickets push to sockets (their audience: `hub.audience.ticket_readers`).


@socket_event
class TicketCreated(SocketEvent, kw_only=True):
    """A ticket was opened (by a person, or from a chat by the organization's rules)."""

    name: ClassVar[str] = "ticketCreated"
    ticket: TicketOut


@socket_event
class TicketUpdated(SocketEvent, kw_only=True):
    """A ticket changed: its fields, status, assignee or SLA clocks, as it is now."""

    name: ClassVar[str] = "ticketUpdated"
    ticket: TicketOut


@socket_event
class TicketAssigned(SocketEvent, kw_only=True):
    """A ticket went to an agent (or to no one); the previous agent hears it too."""

    name: ClassVar[str] = "ticketAssigned"
    ticket_id: uuid.UUID
    agent_id: uuid.UUID | None
    previous_agent_id: uuid.UUID | None = None


@socket_event
class CommentAdded(SocketEvent, kw_only=True):
    """A comment (for the team, or a public reply) was added to a ticket."""

    name: ClassVar[str] = "commentAdded"
    ticket_id: uuid.UUID
    comment: CommentOut


@socket_event
class Mentioned(SocketEvent, kw_only=True):
    """To the people a comment mentions, who may see its ticket."""

    name: ClassVar[str] = "mentioned"
    ticket_id: uuid.UUID
    number: int
    comment: CommentOut
    by: uuid.UUID


@socket_event
class SlaWarning(SocketEvent, kw_only=True):
    """80% of a ticket's SLA target has passed."""

    name: ClassVar[str] = "slaWarning"
    ticket_id: uuid.UUID
    number: int
    target: str  # first_response, resolution
    due_at: datetime | None


@socket_event
class SlaBreached(SocketEvent, kw_only=True):
    """A ticket's SLA target passed unmet."""

    name: ClassVar[str] = "slaBreached"
    ticket_id: uuid.UUID
    number: int
    target: str
    due_at: datetime | None


@socket_event
class TicketSuggested(SocketEvent, kw_only=True):
    """To whoever holds the chat (else who assigns tickets): a message asks for a ticket, drafted."""

    name: ClassVar[str] = "ticketSuggested"
    chat_id: uuid.UUID
    message_id: uuid.UUID
    keyword: str
    draft: TicketIn
