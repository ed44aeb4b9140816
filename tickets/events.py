"""What tickets publish: their public contract for the inbox and others."""

from __future__ import annotations

import uuid
from typing import ClassVar

from hub.events import Event, event_type


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
