"""The audit log: who changed what, for admins to read."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from sqlalchemy import select

from hub.db import HubAsyncSession
from hub.models import AuditEntry, User
from hub.pagination import paginate

log = structlog.get_logger(__name__)


async def record_audit(
    session: HubAsyncSession,
    *,
    actor_id: uuid.UUID | None,
    action: str,
    object_type: str,
    object_id: uuid.UUID | None,
    changes: dict[str, Any] | None = None,
) -> None:
    """Who changed what; written in the same transaction as the change itself."""
    session.add(
        AuditEntry(
            actor_id=actor_id,
            action=action,
            object_type=object_type,
            object_id=object_id,
            changes=changes or {},
        )
    )


async def list_audit(
    session: HubAsyncSession, *, cursor: str | None, limit: int, object_type: str | None = None
) -> tuple[list[tuple[AuditEntry, str | None]], str | None]:
    statement = select(AuditEntry, User.full_name).outerjoin(User, User.id == AuditEntry.actor_id)
    if object_type:
        statement = statement.where(AuditEntry.object_type == object_type)
    rows, next_cursor = await paginate(session, statement, AuditEntry.id, cursor=cursor, limit=limit)
    return [(row[0], row[1]) for row in rows], next_cursor
