"""Conversations (one per customer per channel) and their messages."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, TenantMixin


class Conversation(Base, TenantMixin):
    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("organization_id", "customer_id", "channel_id"),
        Index("ix_conversations_org_last", "organization_id", "last_message_at", "id"),
        # An agent's open conversations, counted on every assignment in turn.
        Index("ix_conversations_org_assignee", "organization_id", "assignee_id", "status"),
    )

    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"), index=True)
    # open, pending, resolved, snoozed
    status: Mapped[str] = mapped_column(String(16), default="open")
    snoozed_until: Mapped[datetime | None]
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    last_message_at: Mapped[datetime | None]
    last_message_preview: Mapped[str | None] = mapped_column(String(200))
    unread_count: Mapped[int] = mapped_column(default=0)


class Message(Base, TenantMixin):
    __tablename__ = "messages"
    __table_args__ = (
        # A delivery the channel repeats is stored once.
        UniqueConstraint("organization_id", "channel_id", "external_id"),
        Index("ix_messages_conversation", "conversation_id", "id"),
    )

    conversation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(8))  # inbound, outbound
    kind: Mapped[str] = mapped_column(String(16), default="text")  # text, image, audio, video, document, note
    text: Mapped[str | None] = mapped_column(Text)
    # queued, sent, delivered, read, failed (inbound messages are "received")
    status: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str | None] = mapped_column(String(200))
    sender_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reply_to_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    private: Mapped[bool] = mapped_column(default=False)
    failure_reason: Mapped[str | None] = mapped_column(String(500))
    send_attempts: Mapped[int] = mapped_column(default=0)
    edited_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]
    # Written by the assistant that answers customers, not by a person of the team.
    by_assistant: Mapped[bool] = mapped_column(default=False)


class MessageAttachment(Base, TenantMixin):
    __tablename__ = "message_attachments"
    __table_args__ = (UniqueConstraint("message_id", "media_id"),)

    message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    media_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(default=0)


class Label(Base, TenantMixin):
    __tablename__ = "labels"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    name: Mapped[str] = mapped_column(String(50))
    color: Mapped[str] = mapped_column(String(7), default="#6b7280")


class ConversationLabel(Base, TenantMixin):
    __tablename__ = "conversation_labels"
    __table_args__ = (
        UniqueConstraint("conversation_id", "label_id"),
        # A conversation's labels, read with every message: led by the organization, so no
        # planner takes the organization's index alone and reads every label of it.
        Index("ix_conversation_labels_org_conversation", "organization_id", "conversation_id"),
    )

    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    label_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("labels.id", ondelete="CASCADE"), index=True)


class CannedResponse(Base, TenantMixin):
    """A saved answer an agent inserts by typing its shortcode."""

    __tablename__ = "canned_responses"
    __table_args__ = (UniqueConstraint("organization_id", "shortcode"),)

    shortcode: Mapped[str] = mapped_column(String(40))
    content: Mapped[str] = mapped_column(Text)


class KnowledgeArticle(Base, TenantMixin):
    """An answer the organization stands behind, in one language: what AI help grounds its
    suggestions and the assistant its answers in, and cites."""

    __tablename__ = "knowledge_articles"

    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(5))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Title, tags and body as searches compare them (`inbox.services.knowledge.search_form`): the
    # full-text index is built on it, on SQLite (FTS5) and PostgreSQL alike.
    search_text: Mapped[str] = mapped_column(Text, default="")
    # The AI server's embedding of the article, and the model that made it (None: not yet made,
    # or no embeddings model configured); a search by meaning compares the question's with it.
    embedding: Mapped[list[float] | None] = mapped_column(JSON)
    embedding_model: Mapped[str | None] = mapped_column(String(100))
    updated_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class AssistantSettings(Base, TenantMixin):
    """The assistant that answers customers from the knowledge base: on which channels, when,
    and when it hands a conversation to the team."""

    __tablename__ = "assistant_settings"
    __table_args__ = (UniqueConstraint("organization_id"),)

    enabled: Mapped[bool] = mapped_column(default=False)
    channel_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    # When it answers, in the organization's time zone: [{"day": 0-6 (Monday first), "start":
    # "09:00", "end": "17:00"}]; none: at any time.
    hours: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    handoff_after_turns: Mapped[int] = mapped_column(default=4)
    handoff_to: Mapped[str] = mapped_column(String(16), default="round_robin")  # or unassigned


class AssistantThread(Base, TenantMixin):
    """The assistant's part in one conversation: how many answers it gave, and whether it still
    answers (answering), gave the conversation to the team (handed_off), or stopped because a
    person of the team wrote (stopped)."""

    __tablename__ = "assistant_threads"
    __table_args__ = (
        UniqueConstraint("organization_id", "conversation_id"),
        Index("ix_assistant_threads_org_created", "organization_id", "created_at"),
    )

    conversation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    turns: Mapped[int] = mapped_column(default=0)
    state: Mapped[str] = mapped_column(String(16), default="answering")
    reason: Mapped[str | None] = mapped_column(String(32))  # why it handed off


class InboxSettings(Base, TenantMixin):
    """How an organization's inbox hands out new conversations."""

    __tablename__ = "inbox_settings"
    __table_args__ = (UniqueConstraint("organization_id"),)

    # Give each new or unassigned conversation to the next online agent, in turn.
    auto_assign: Mapped[bool] = mapped_column(default=False)
    # No agent gets more open conversations than this from the automatic round.
    agent_cap: Mapped[int] = mapped_column(default=10)
    last_assignee_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
