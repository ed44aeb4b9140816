"""Request and response bodies of the CRM API."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from hub.schemas import Email, Language, Name, Request

Phone = Annotated[str, Meta(min_length=3, max_length=32)]
Tag = Annotated[str, Meta(min_length=1, max_length=50)]
Tags = Annotated[list[Tag], Meta(max_length=50)]
AttributeKey = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
AttributeKind = Literal["text", "number", "date", "choice"]
Outcome = Literal["open", "won", "lost"]
Currency = Annotated[str, Meta(pattern=r"^[A-Z]{3}$")]
Amount = Decimal  # checked in the service: msgspec sets no bounds on decimals
ActivityKind = Literal["note", "call", "meeting", "task"]
Sort = Literal["newest", "oldest", "name"]


class CustomerIn(Request):
    name: Name
    phone: Phone | None = None
    email: Email | None = None
    language: Language | None = None
    opted_out: bool = False
    tags: Tags = []  # noqa: RUF012
    attributes: dict[str, Any] = {}  # noqa: RUF012
    owner_id: uuid.UUID | None = None
    company_id: uuid.UUID | None = None


class CustomerUpdate(Request):
    name: Name | UnsetType = UNSET
    phone: Phone | UnsetType | None = UNSET
    email: Email | UnsetType | None = UNSET
    language: Language | UnsetType | None = UNSET
    opted_out: bool | UnsetType = UNSET
    tags: Tags | UnsetType = UNSET
    # Merged into the stored values; a key set to null is removed.
    attributes: dict[str, Any] | UnsetType = UNSET
    owner_id: uuid.UUID | UnsetType | None = UNSET
    company_id: uuid.UUID | UnsetType | None = UNSET


class CustomerOut(Struct):
    id: uuid.UUID
    name: str
    phone: str | None
    other_phones: list[str]  # numbers kept from merged duplicates; messages from them reach this customer
    email: str | None
    language: str | None
    opted_out: bool
    tags: list[str]
    attributes: dict[str, Any]
    owner_id: uuid.UUID | None
    company_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    score: int
    score_factors: list[ScoreFactor]


class MergeRequest(Request):
    duplicate_id: uuid.UUID


class AttributeDefinitionIn(Request):
    key: AttributeKey
    label: Name
    kind: AttributeKind
    choices: Annotated[list[Tag], Meta(max_length=100)] = []  # noqa: RUF012


class AttributeDefinitionOut(Struct):
    id: uuid.UUID
    key: str
    label: str
    kind: str
    choices: list[str]


class CompanyIn(Request):
    name: Name
    domain: Annotated[str, Meta(max_length=253)] | None = None
    sector: Annotated[str, Meta(max_length=100)] | None = None
    size: Annotated[int, Meta(ge=0)] | None = None


class CompanyUpdate(Request):
    name: Name | UnsetType = UNSET
    domain: Annotated[str, Meta(max_length=253)] | UnsetType | None = UNSET
    sector: Annotated[str, Meta(max_length=100)] | UnsetType | None = UNSET
    size: Annotated[int, Meta(ge=0)] | UnsetType | None = UNSET


class CompanyOut(Struct):
    id: uuid.UUID
    name: str
    domain: str | None
    sector: str | None
    size: int | None
    created_at: datetime


class StageIn(Request):
    name: Annotated[str, Meta(min_length=1, max_length=100)]
    outcome: Outcome = "open"
    # Where it goes in the pipeline, from 0; at the end when left out.
    position: Annotated[int, Meta(ge=0)] | None = None


class StageUpdate(Request):
    name: Annotated[str, Meta(min_length=1, max_length=100)] | UnsetType = UNSET
    position: Annotated[int, Meta(ge=0)] | UnsetType = UNSET


class StageOut(Struct):
    id: uuid.UUID
    name: str
    position: int
    outcome: str


class DealIn(Request):
    title: Name
    customer_id: uuid.UUID
    stage_id: uuid.UUID | None = None  # the first stage when left out
    company_id: uuid.UUID | None = None
    amount: Amount = Decimal(0)
    currency: Currency = "SAR"
    owner_id: uuid.UUID | None = None
    expected_close_on: date | None = None
    source: Annotated[str, Meta(max_length=100)] | None = None


class DealUpdate(Request):
    title: Name | UnsetType = UNSET
    stage_id: uuid.UUID | UnsetType = UNSET
    company_id: uuid.UUID | UnsetType | None = UNSET
    amount: Amount | UnsetType = UNSET
    currency: Currency | UnsetType = UNSET
    owner_id: uuid.UUID | UnsetType | None = UNSET
    expected_close_on: date | UnsetType | None = UNSET
    source: Annotated[str, Meta(max_length=100)] | UnsetType | None = UNSET
    reason: Annotated[str, Meta(max_length=500)] | UnsetType | None = UNSET


class DealOut(Struct):
    id: uuid.UUID
    title: str
    customer_id: uuid.UUID
    company_id: uuid.UUID | None
    stage_id: uuid.UUID
    amount: Decimal
    currency: str
    owner_id: uuid.UUID | None
    expected_close_on: date | None
    source: str | None
    reason: str | None
    closed_at: datetime | None
    created_at: datetime


class StageTotal(Struct):
    currency: str
    amount: Decimal


class BoardColumn(Struct):
    stage: StageOut
    deals: list[DealOut]
    count: int
    totals: list[StageTotal]  # per currency


class ActivityIn(Request):
    kind: ActivityKind
    text: Annotated[str, Meta(min_length=1, max_length=10000)]
    due_at: datetime | None = None
    deal_id: uuid.UUID | None = None


class ActivityUpdate(Request):
    text: Annotated[str, Meta(min_length=1, max_length=10000)] | UnsetType = UNSET
    due_at: datetime | UnsetType | None = UNSET
    done: bool | UnsetType = UNSET


class ActivityOut(Struct):
    id: uuid.UUID
    customer_id: uuid.UUID
    kind: str
    text: str | None
    author_id: uuid.UUID | None
    deal_id: uuid.UUID | None
    due_at: datetime | None
    done_at: datetime | None
    details: dict[str, Any]
    created_at: datetime


class LeadIn(Request):
    name: Name
    email: Annotated[str, Meta(max_length=254)] | None = None
    phone: Phone | None = None
    company: Annotated[str, Meta(max_length=200)] | None = None
    message: Annotated[str, Meta(max_length=5000)] | None = None
    source: Annotated[str, Meta(max_length=100)] | None = None
    locale: Language | None = None
    idempotency_key: Annotated[str, Meta(min_length=1, max_length=100)] | None = None
    # Left empty by people; a form hides it, and robots fill it in.
    website: str | None = None


class LeadAccepted(Struct):
    """The same answer whether the person was known, new, or a robot: it tells nothing about them."""

    detail: str


Points = Annotated[int, Meta(ge=0, le=100)]


class ScoringRules(Struct, forbid_unknown_fields=True, kw_only=True):
    """How a lead's score (0 to 100) is made; each part is shown with the points it gave."""

    recent_days: Annotated[int, Meta(ge=1, le=365)] = 7  # the customer wrote within these days
    recent_points: Points = 25
    reply_points: Points = 15  # in proportion to the share of the business's messages answered
    stage_points: Points = 30  # for the furthest open stage reached, in proportion
    won_points: Points = 20  # a deal won
    amount_step: Annotated[int, Meta(ge=1)] = 1000  # open and won deals' amounts, per step
    amount_points: Points = 1
    amount_max: Points = 15
    activity_points: Points = 2  # notes, calls, meetings and tasks by the team
    activity_max: Points = 10
    hot_sources: Annotated[list[Annotated[str, Meta(max_length=100)]], Meta(max_length=50)] = []
    source_points: Points = 10


class ScoreFactor(Struct):
    factor: str
    points: int
    detail: dict[str, Any]


class ScoreOut(Struct):
    score: int
    factors: list[ScoreFactor]


class CrmSettingsOut(Struct):
    lead_origins: list[str]
    scoring: ScoringRules
    opt_out_keywords: list[str]


class CrmSettingsUpdate(Request):
    lead_origins: (
        Annotated[list[Annotated[str, Meta(pattern=r"^https?://[^/\s]+$")]], Meta(max_length=50)] | UnsetType
    ) = UNSET
    scoring: ScoringRules | UnsetType = UNSET
    opt_out_keywords: (
        Annotated[list[Annotated[str, Meta(min_length=1, max_length=40)]], Meta(max_length=50)] | UnsetType
    ) = UNSET


class AttributeCondition(Struct, forbid_unknown_fields=True, kw_only=True):
    key: AttributeKey
    op: Literal["eq", "ne", "gt", "gte", "lt", "lte", "in"] = "eq"
    value: Any


class SegmentFilters(Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    """Every condition given must hold; within a list, any item may match."""

    tags: Tags = []
    languages: list[Language] = []
    stage_ids: list[uuid.UUID] = []
    company_ids: list[uuid.UUID] = []
    attributes: Annotated[list[AttributeCondition], Meta(max_length=20)] = []
    channel_ids: list[uuid.UUID] = []
    last_contacted_after: datetime | None = None
    last_contacted_before: datetime | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    score_min: Annotated[int, Meta(ge=0, le=100)] | None = None
    score_max: Annotated[int, Meta(ge=0, le=100)] | None = None


class SegmentIn(Request):
    name: Name
    filters: SegmentFilters = msgspec.field(default_factory=SegmentFilters)


class SegmentUpdate(Request):
    name: Name | UnsetType = UNSET
    filters: SegmentFilters | UnsetType = UNSET


class SegmentCounts(Struct):
    matching: int
    sendable: int  # matching, minus those who opted out
    opted_out: int


class SegmentOut(Struct):
    id: uuid.UUID
    name: str
    filters: SegmentFilters
    counts: SegmentCounts
    created_at: datetime


ImportField = Annotated[
    str,
    Meta(pattern=r"^(name|phone|email|language|tags|opted_out|company|attributes\.[a-z][a-z0-9_]{0,63})$"),
]


class ImportRequest(Request):
    media_id: uuid.UUID  # the CSV file, uploaded through POST /api/media
    mapping: Annotated[
        dict[Annotated[str, Meta(min_length=1, max_length=200)], ImportField], Meta(min_length=1)
    ]
    on_duplicate: Literal["skip", "update"] = "skip"


class ImportOut(Struct):
    id: uuid.UUID
    status: str
    rows: int
    created: int
    updated: int
    skipped: int
    failed: int
    errors: list[dict[str, Any]]
    created_at: datetime
    finished_at: datetime | None
