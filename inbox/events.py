"""What the inbox publishes: its public contract for the CRM, tickets and campaigns."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar

import msgspec

from hub.events import Event, event_type
from hub.realtime import SocketEvent, socket_event
from inbox.schemas import ConversationOut, MessageOut


@event_type
class MessageReceived(Event, frozen=True, kw_only=True):
    name: ClassVar[str] = "inbox.message_received"
    message_id: uuid.UUID
    conversation_id: uuid.UUID
    customer_id: uuid.UUID
    channel_id: uuid.UUID
    conversation_created: bool
    text: str | None
    assignee_id: uuid.UUID | None = None  # the conversation's, once this message was stored
    customer_created: bool = False  # the sender's first message ever: they are in nothing yet


class CustomerWrote(msgspec.Struct, frozen=True, kw_only=True):
    conversation_id: uuid.UUID
    customer_id: uuid.UUID
    first_at: datetime  # the customer's first and last message of the stretch
    last_at: datetime


@event_type
class CustomersWrote(Event, frozen=True, kw_only=True):
    """Who wrote in a stretch of time, one entry a conversation, published durably by a sweep a
    little after the messages: whatever reacts to `MessageReceived` at once but must not be lost
    with a process (a ticket reopened, a campaign reply marked) is caught up from it."""

    name: ClassVar[str] = "inbox.customers_wrote"
    conversations: list[CustomerWrote]


@event_type
class MessageStatusChanged(Event, frozen=True, kw_only=True):
    name: ClassVar[str] = "inbox.message_status_changed"
    message_id: uuid.UUID
    conversation_id: uuid.UUID
    customer_id: uuid.UUID
    status: str


@event_type
class ConversationAssigned(Event, frozen=True, kw_only=True):
    name: ClassVar[str] = "inbox.conversation_assigned"
    conversation_id: uuid.UUID
    assignee_id: uuid.UUID | None
    previous_assignee_id: uuid.UUID | None


@event_type
class ConversationStarted(Event, frozen=True, kw_only=True):
    """A customer's first message on a channel opened a conversation."""

    name: ClassVar[str] = "inbox.conversation_started"
    conversation_id: uuid.UUID
    customer_id: uuid.UUID
    channel_id: uuid.UUID
    message_id: uuid.UUID
    at: datetime


@event_type
class ReplyQueued(Event, frozen=True, kw_only=True):
    """The team answered a customer in a conversation (a note for the team is not an answer)."""

    name: ClassVar[str] = "inbox.reply_queued"
    conversation_id: uuid.UUID
    message_id: uuid.UUID
    sender_user_id: uuid.UUID | None
    at: datetime


# What the inbox pushes to sockets (its audience: `hub.audience.chat_readers`).


@socket_event
class NewMessage(SocketEvent, kw_only=True):
    """A customer's message arrived, with its conversation as it is now."""

    name: ClassVar[str] = "newMessage"
    chat_id: uuid.UUID
    message: MessageOut
    conversation: ConversationOut


@socket_event
class MessageSent(SocketEvent, kw_only=True):
    """The team's message joined a conversation (a reply, a note, a campaign's message)."""

    name: ClassVar[str] = "messageSent"
    chat_id: uuid.UUID
    message: MessageOut


@socket_event
class MessageUpdated(SocketEvent, kw_only=True):
    """A message changed: its status moved on (sent, delivered, read, failed) or it was edited."""

    name: ClassVar[str] = "messageUpdated"
    chat_id: uuid.UUID
    message: MessageOut


@socket_event
class MessageDeleted(SocketEvent, kw_only=True):
    """A message of the team was deleted."""

    name: ClassVar[str] = "messageDeleted"
    chat_id: uuid.UUID
    message_id: uuid.UUID


@socket_event
class ConversationUpdated(SocketEvent, kw_only=True):
    """A conversation changed: status, assignee, labels, read state."""

    name: ClassVar[str] = "conversationUpdated"
    chat_id: uuid.UUID
    conversation: ConversationOut


@socket_event
class ConversationUnassigned(SocketEvent, kw_only=True):
    """To the agent who held it only: the conversation went to someone else."""

    name: ClassVar[str] = "conversationUnassigned"
    chat_id: uuid.UUID
