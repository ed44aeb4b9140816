"""Request and response bodies of the kernel's API (msgspec structs, snake_case keys)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$"
Email = Annotated[str, Meta(max_length=254, pattern=EMAIL_PATTERN)]
Password = Annotated[str, Meta(min_length=1, max_length=256)]
Name = Annotated[str, Meta(min_length=1, max_length=200)]
Token = Annotated[str, Meta(min_length=1, max_length=200)]
Language = Literal["ar", "en"]
Role = Literal["admin", "manager", "agent", "member"]
TimeZone = Annotated[str, Meta(min_length=1, max_length=64)]

T = TypeVar("T")


class Request(Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of request bodies: an unknown field is an error, not silently dropped."""


class Page(Struct, Generic[T]):
    items: list[T]
    next_cursor: str | None


class RegisterRequest(Request):
    organization_name: Name
    full_name: Name
    email: Email
    password: Password
    language: Language | None = None


class LoginRequest(Request):
    email: Email
    password: Password


class ForgotPasswordRequest(Request):
    email: Email


class ResetPasswordRequest(Request):
    token: Token
    password: Password


class PasswordChangeRequest(Request):
    current_password: Annotated[str, Meta(min_length=1, max_length=200)]
    password: Password


class AcceptInvitationRequest(Request):
    token: Token
    full_name: Name
    password: Password
    language: Language | None = None


class UserOut(Struct):
    id: uuid.UUID
    email: str
    full_name: str
    role: str
    preferred_language: str | None
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None


class OrganizationOut(Struct):
    id: uuid.UUID
    name: str
    slug: str
    default_language: str
    time_zone: str
    default_region: str | None


class SessionOut(Struct):
    access_token: str
    token_type: str
    expires_at: datetime
    user: UserOut
    organization: OrganizationOut
    # What the user's role may do per area ("none", "read" or "write"; /me also puts switched-off
    # modules at "none"): the console shows only what this allows; the API enforces it on every call.
    permissions: dict[str, str] = {}
    # Whether this installation bills (Stripe configured): without it there is no billing page.
    billing: bool = False
    # Whether AI assistance is here (an AI server configured, the module on).
    ai: bool = False


class AcceptedOut(Struct):
    detail: str


class InviteRequest(Request):
    email: Email
    role: Role


class InvitationOut(Struct):
    id: uuid.UUID
    email: str
    role: str
    expires_at: datetime
    invitation_url: str


class PendingInvitationOut(Struct):
    """An invitation still waiting; its link was shown once, when it was made."""

    id: uuid.UUID
    email: str
    role: str
    invited_by_id: uuid.UUID | None
    created_at: datetime
    expires_at: datetime


class RoleChangeRequest(Request):
    role: Role


class ProfileUpdate(Request):
    full_name: Name | UnsetType = UNSET
    preferred_language: Language | UnsetType | None = UNSET


class OrganizationUpdate(Request):
    name: Name | UnsetType = UNSET
    default_language: Language | UnsetType = UNSET
    time_zone: TimeZone | UnsetType = UNSET
    # ISO 3166 country code whose numbering plan reads phone numbers written without "+".
    default_region: Annotated[str, Meta(pattern=r"^[A-Z]{2}$")] | UnsetType | None = UNSET


class ModuleSettings(Struct, forbid_unknown_fields=True, kw_only=True):
    whatsapp: bool | UnsetType = UNSET
    crm: bool | UnsetType = UNSET
    ticketing: bool | UnsetType = UNSET
    campaigns: bool | UnsetType = UNSET
    billing: bool | UnsetType = UNSET
    ai: bool | UnsetType = UNSET

    def changes(self) -> dict[str, bool]:
        return {k: v for k, v in msgspec.structs.asdict(self).items() if v is not UNSET}


class AuditEntryOut(Struct):
    id: uuid.UUID
    actor_id: uuid.UUID | None
    actor_name: str | None
    action: str
    object_type: str
    object_id: uuid.UUID | None
    changes: dict[str, Any]
    created_at: datetime


class MediaOut(Struct):
    id: uuid.UUID
    kind: str
    content_type: str
    size: int
    filename: str | None
    url: str  # an expiring link


class CheckOut(Struct):
    status: Literal["ok", "down", "off"]
    detail: str | None = None


class HealthOut(Struct):
    status: Literal["ok", "degraded", "down"]
    database: CheckOut
    redis: CheckOut
    broker: CheckOut


class UsageOut(Struct):
    month: str
    metrics: dict[str, int]  # messages_sent, ...


class AISettingsIn(Request):
    """An organization's own OpenAI-compatible server."""

    base_url: Annotated[str, Meta(min_length=8, max_length=500)]
    model: Annotated[str, Meta(min_length=1, max_length=100)]
    embeddings_model: Annotated[str, Meta(max_length=100)] | None = None
    api_key: Annotated[str, Meta(max_length=500)] | UnsetType | None = UNSET


class AISettingsOut(Struct):
    # organization: its own server; installation: the operator's; none: no AI here
    source: Literal["organization", "installation", "none"]
    base_url: str | None = None
    model: str | None = None
    embeddings_model: str | None = None
    has_key: bool = False


class AIRequestOut(Struct, kw_only=True):
    request_id: str  # the answer comes on the asker's sockets: aiChunk, then aiDone or aiFailed
