"""Request and response bodies of the tickets API."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from hub.schemas import MediaOut, Request, TimeZone

Kind = Literal["support", "sales"]
Status = Literal["open", "in_progress", "waiting_on_customer", "resolved", "closed"]
Priority = Literal["low", "normal", "high", "urgent"]
Title = Annotated[str, Meta(min_length=1, max_length=200)]
Text = Annotated[str, Meta(max_length=20000)]
Tag = Annotated[str, Meta(min_length=1, max_length=50)]
Tags = Annotated[list[Tag], Meta(max_length=50)]
Minutes = Annotated[int, Meta(ge=1, le=365 * 24 * 60)]  # zero or negative targets are refused
ClockTime = Annotated[str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")]
Keyword = Annotated[str, Meta(min_length=2, max_length=100)]

STATUSES: tuple[Status, ...] = ("open", "in_progress", "waiting_on_customer", "resolved", "closed")
PRIORITIES: tuple[Priority, ...] = ("low", "normal", "high", "urgent")


class TicketIn(Request):
    title: Title
    description: Text | None = None
    kind: Kind = "support"
    priority: Priority = "normal"
    customer_id: uuid.UUID | None = None
    # Opened from a chat: the customer comes from it, and its latest messages come along.
    conversation_id: uuid.UUID | None = None
    assignee_id: uuid.UUID | None = None
    tags: Tags = []  # noqa: RUF012


class TicketUpdate(Request):
    title: Title | UnsetType = UNSET
    description: Text | UnsetType | None = UNSET
    kind: Kind | UnsetType = UNSET
    status: Status | UnsetType = UNSET
    priority: Priority | UnsetType = UNSET
    customer_id: uuid.UUID | UnsetType | None = UNSET
    tags: Tags | UnsetType = UNSET


class AssignRequest(Request):
    assignee_id: uuid.UUID | None  # null takes the ticket away from whoever has it


class CommentIn(Request):
    text: Text | None = None
    # A public reply goes to the customer through the ticket's conversation.
    public: bool = False
    mentions: Annotated[list[uuid.UUID], Meta(max_length=20)] = []  # noqa: RUF012
    attachments: Annotated[list[uuid.UUID], Meta(max_length=10)] = []  # noqa: RUF012


class SlaTarget(Struct):
    due_at: datetime | None
    left_seconds: float | None  # while the clock is paused
    met_at: datetime | None
    warned_at: datetime | None
    breached_at: datetime | None


class TicketOut(Struct):
    id: uuid.UUID
    number: int
    kind: str
    title: str
    description: str | None
    status: str
    priority: str
    customer_id: uuid.UUID | None
    conversation_id: uuid.UUID | None
    assignee_id: uuid.UUID | None
    created_by: uuid.UUID | None
    tags: list[str]
    context: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    closed_at: datetime | None
    first_response: SlaTarget | None
    resolution: SlaTarget | None


class CommentOut(Struct):
    id: uuid.UUID
    ticket_id: uuid.UUID
    author_id: uuid.UUID | None
    text: str | None
    public: bool
    mentions: list[str]
    attachments: list[MediaOut]
    created_at: datetime


class ChangeOut(Struct):
    id: uuid.UUID
    kind: str
    actor_id: uuid.UUID | None
    details: dict[str, Any]
    created_at: datetime


class SlaPolicyIn(Request):
    first_response_minutes: Minutes
    resolution_minutes: Minutes
    business_hours_only: bool = True


class SlaPolicyOut(Struct):
    priority: str
    first_response_minutes: int
    resolution_minutes: int
    business_hours_only: bool


class SuggestionRule(Struct, forbid_unknown_fields=True, kw_only=True):
    keywords: Annotated[list[Keyword], Meta(min_length=1, max_length=100)]
    kind: Kind = "support"
    priority: Priority = "normal"


Hours = Annotated[list[Annotated[list[ClockTime], Meta(min_length=2, max_length=2)]], Meta(max_length=6)]


class BusinessHours(Struct, forbid_unknown_fields=True, kw_only=True):
    sun: Hours = []
    mon: Hours = []
    tue: Hours = []
    wed: Hours = []
    thu: Hours = []
    fri: Hours = []
    sat: Hours = []


class TicketSettingsUpdate(Request):
    time_zone: TimeZone | UnsetType | None = UNSET
    business_hours: BusinessHours | UnsetType = UNSET  # every day empty: round the clock
    holidays: Annotated[list[date], Meta(max_length=400)] | UnsetType = UNSET
    suggestion_rules: Annotated[list[SuggestionRule], Meta(max_length=50)] | UnsetType = UNSET
    create_automatically: bool | UnsetType = UNSET


class TicketSettingsOut(Struct):
    time_zone: str
    business_hours: BusinessHours
    holidays: list[date]
    suggestion_rules: list[SuggestionRule]
    create_automatically: bool


class SlaShare(Struct):
    tickets: int
    met: int
    breached: int
    share_met: float | None  # met of those decided (met or breached); none when none was


class SlaReportRow(Struct):
    priority: str | None
    assignee_id: uuid.UUID | None
    first_response: SlaShare
    resolution: SlaShare


class SlaReport(Struct):
    since: datetime
    until: datetime
    by_priority: list[SlaReportRow]
    by_agent: list[SlaReportRow]
