"""Request and response bodies of the inbox API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType, field

from hub.schemas import MediaOut, Request

Status = Literal["open", "pending", "resolved", "snoozed"]
Text = Annotated[str, Meta(min_length=1, max_length=4096)]


class CustomerBrief(Struct):
    id: uuid.UUID
    name: str
    phone: str | None


class MessageOut(Struct):
    id: uuid.UUID
    conversation_id: uuid.UUID
    direction: str
    kind: str
    text: str | None
    status: str
    external_id: str | None
    sender_user_id: uuid.UUID | None
    reply_to_id: uuid.UUID | None
    private: bool
    failure_reason: str | None
    created_at: datetime
    edited_at: datetime | None
    deleted_at: datetime | None
    attachments: list[MediaOut]
    by_assistant: bool = False  # written by the assistant that answers customers


class ConversationOut(Struct):
    id: uuid.UUID
    channel_id: uuid.UUID
    customer: CustomerBrief
    status: str
    snoozed_until: datetime | None
    assignee_id: uuid.UUID | None
    last_message_at: datetime | None
    last_message_preview: str | None
    unread_count: int
    labels: list[str]
    created_at: datetime


class ReplyRequest(Request):
    text: Text | None = None
    # Ids from POST /api/media.
    attachments: Annotated[list[uuid.UUID], Meta(max_length=10)] = []  # noqa: RUF012
    private: bool = False
    reply_to: uuid.UUID | None = None


class ImproveRequest(Request):
    text: Text
    tone: Annotated[str, Meta(min_length=1, max_length=16)]  # grammar, friendly, formal, shorter, expand


class TranslateRequest(Request):
    # The agent's draft (into the customer's language), or a message of the conversation (into
    # the agent's); `to` names another language.
    text: Text | None = None
    message_id: uuid.UUID | None = None
    to: Annotated[str, Meta(pattern=r"^[a-z]{2}(-[A-Za-z]{2,4})?$")] | None = None


class AssignRequest(Request):
    assignee_id: uuid.UUID | None


class ConversationUpdate(Request):
    status: Status | UnsetType = UNSET
    snoozed_until: datetime | UnsetType | None = UNSET


class EditRequest(Request):
    text: Text


class ForwardRequest(Request):
    conversation_id: uuid.UUID


class SendRequest(Request):
    """The seed's `POST /api/whatsapp/send`: a reply into a conversation."""

    conversation_id: uuid.UUID
    text: Text
    reply_to: uuid.UUID | None = None


class SeedForwardRequest(Request):
    message_id: uuid.UUID
    conversation_id: uuid.UUID


class SeedEditRequest(Request):
    message_id: uuid.UUID
    text: Text


class SeedDeleteRequest(Request):
    message_id: uuid.UUID


class LabelIn(Request):
    name: Annotated[str, Meta(min_length=1, max_length=50)]
    color: Annotated[str, Meta(pattern=r"^#[0-9a-fA-F]{6}$")] = "#6b7280"


class LabelOut(Struct):
    id: uuid.UUID
    name: str
    color: str


class ConversationLabels(Request):
    labels: Annotated[list[Annotated[str, Meta(min_length=1, max_length=50)]], Meta(max_length=20)]


class CannedResponseIn(Request):
    shortcode: Annotated[str, Meta(min_length=1, max_length=40, pattern=r"^[\w-]+$")]
    content: Annotated[str, Meta(min_length=1, max_length=4096)]


class CannedResponseUpdate(Request):
    shortcode: Annotated[str, Meta(min_length=1, max_length=40, pattern=r"^[\w-]+$")] | UnsetType = UNSET
    content: Annotated[str, Meta(min_length=1, max_length=4096)] | UnsetType = UNSET


class CannedResponseOut(Struct):
    id: uuid.UUID
    shortcode: str
    content: str


ArticleTitle = Annotated[str, Meta(min_length=1, max_length=200)]
ArticleBody = Annotated[str, Meta(min_length=1, max_length=20_000)]
ArticleLanguage = Annotated[str, Meta(pattern=r"^[a-z]{2}$")]
ArticleTags = Annotated[list[Annotated[str, Meta(min_length=1, max_length=50)]], Meta(max_length=20)]


class ArticleIn(Request):
    title: ArticleTitle
    body: ArticleBody
    language: ArticleLanguage | None = None  # the organization's language when not given
    tags: ArticleTags = field(default_factory=list)


class ArticleUpdate(Request):
    title: ArticleTitle | UnsetType = UNSET
    body: ArticleBody | UnsetType = UNSET
    language: ArticleLanguage | UnsetType = UNSET
    tags: ArticleTags | UnsetType = UNSET


class ArticleOut(Struct):
    id: uuid.UUID
    title: str
    body: str
    language: str
    tags: list[str]
    updated_at: datetime
    # Whether AI help can also find it by meaning (its embedding is made).
    found_by_meaning: bool


Clock = Annotated[str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class AssistantHours(Struct, forbid_unknown_fields=True):
    day: Annotated[int, Meta(ge=0, le=6)]  # Monday is 0
    start: Clock
    end: Clock


class AssistantSettingsIn(Request):
    enabled: bool
    channel_ids: Annotated[list[uuid.UUID], Meta(max_length=100)] = field(default_factory=list)
    hours: Annotated[list[AssistantHours], Meta(max_length=50)] = field(default_factory=list)
    handoff_after_turns: Annotated[int, Meta(ge=1, le=20)] = 4
    handoff_to: Literal["round_robin", "unassigned"] = "round_robin"


class AssistantSettingsOut(Struct):
    enabled: bool
    channel_ids: list[uuid.UUID]
    hours: list[AssistantHours]
    handoff_after_turns: int
    handoff_to: str


class AssistantReport(Struct):
    """What the assistant did with the conversations it took since `since`."""

    since: datetime
    answered: int  # conversations it answered at least once
    handed_off: int  # conversations it gave to the team
    resolved: int  # conversations it answered that were resolved without being handed off
    messages: int  # what it wrote to customers (answers and hand-off words)


class InboxSettingsOut(Struct):
    auto_assign: bool
    agent_cap: int


class InboxSettingsUpdate(Request):
    auto_assign: bool | UnsetType = UNSET
    agent_cap: Annotated[int, Meta(ge=1, le=1000)] | UnsetType = UNSET
