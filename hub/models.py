"""The kernel's tables: organizations, their users, access, settings, audit, outbox and timed jobs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, TenantMixin

JSONType = JSON().with_variant(JSONB(), "postgresql")


class Organization(Base):
    __tablename__ = "organizations"

    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    default_language: Mapped[str] = mapped_column(String(5), default="ar")
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    # The country whose numbering plan reads phone numbers written without a country code.
    default_region: Mapped[str | None] = mapped_column(String(2))


class User(Base, TenantMixin):
    __tablename__ = "users"

    # One person, one account: e-mail is unique across the installation so login needs no tenant.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    preferred_language: Mapped[str | None] = mapped_column(String(5))
    is_active: Mapped[bool] = mapped_column(default=True)
    last_login_at: Mapped[datetime | None]
    # Carried by every access token; a new password raises it, ending every earlier session.
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")


class Invitation(Base, TenantMixin):
    __tablename__ = "invitations"

    email: Mapped[str] = mapped_column(String(254), index=True)
    role: Mapped[str] = mapped_column(String(16))
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]


class PasswordReset(Base, TenantMixin):
    __tablename__ = "password_resets"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class RevokedToken(Base, TenantMixin):
    """Access tokens ended by logout before their expiry; rows past `expires_at` are swept."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(index=True)


class ModuleSetting(Base, TenantMixin):
    __tablename__ = "module_settings"
    __table_args__ = (UniqueConstraint("organization_id", "module"),)

    module: Mapped[str] = mapped_column(String(32))
    enabled: Mapped[bool]


class AISettings(Base, TenantMixin):
    """An organization's own OpenAI-compatible server, used instead of the installation's. The
    key is sealed (`hub.sealing`) and never answered back."""

    __tablename__ = "ai_settings"
    __table_args__ = (UniqueConstraint("organization_id"),)

    base_url: Mapped[str] = mapped_column(String(500))
    api_key_sealed: Mapped[str | None] = mapped_column(String(1000))
    model: Mapped[str] = mapped_column(String(100))
    embeddings_model: Mapped[str | None] = mapped_column(String(100))


class AuditEntry(Base, TenantMixin):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_org_id", "organization_id", "id"),)

    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[uuid.UUID | None]
    changes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class OutboxEntry(Base, TenantMixin):
    """One event for one handler, written in the transaction that caused it, deleted once handled."""

    __tablename__ = "event_outbox"
    __table_args__ = (Index("ix_event_outbox_due", "available_at"),)

    event_name: Mapped[str] = mapped_column(String(100))
    handler: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    attempts: Mapped[int] = mapped_column(default=0)
    available_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(String(2000))


class ScheduledJob(Base):
    """Timed work kept in the database, so it fires after any restart; sent once by the scheduler."""

    __tablename__ = "scheduled_jobs"
    __table_args__ = (Index("ix_scheduled_jobs_due", "sent_at", "run_at"),)

    organization_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    task_name: Mapped[str] = mapped_column(String(200))
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    run_at: Mapped[datetime]
    # Re-scheduling the same key replaces the pending job instead of adding another.
    key: Mapped[str | None] = mapped_column(String(200), unique=True)
    # Taken by the scheduler for its run time; a claim not followed by `sent_at` (the hand-off
    # failed, the scheduler died) lapses and the job is handed off again.
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]


class Watermark(Base):
    """How far a sweep over the whole installation has come (an id of a time-ordered table), so
    it takes up where it stopped after any restart, and never from the start."""

    __tablename__ = "watermarks"

    name: Mapped[str] = mapped_column(String(100), unique=True)
    position: Mapped[str] = mapped_column(String(64))


class Media(Base, TenantMixin):
    """A file an organization received or sent; the bytes live in the media store under `key`."""

    __tablename__ = "media"

    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # image, audio, video, document
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str | None] = mapped_column(String(255))


class UsageCounter(Base, TenantMixin):
    """What an organization used in a calendar month (UTC), by metric: the figures billing reads."""

    __tablename__ = "usage_counters"
    __table_args__ = (UniqueConstraint("organization_id", "month", "metric"),)

    month: Mapped[str] = mapped_column(String(7))  # 2026-11
    metric: Mapped[str] = mapped_column(String(32))  # messages_sent
    quantity: Mapped[int] = mapped_column(BigInteger, default=0)
