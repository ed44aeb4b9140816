"""Cursor pagination, never OFFSET: by time-ordered id (stable under inserts), or by a position of
several keys (a last activity and an id, a name and an id), each an opaque cursor of one codec."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
from sqlalchemy import Select

from hub.db import HubAsyncSession
from hub.errors import InvalidInput
from hub.i18n import N_

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
Row = TypeVar("Row")


def encode_cursor(last_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(last_id.bytes).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> uuid.UUID:
    try:
        return uuid.UUID(bytes=base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise InvalidInput(N_("The cursor is not valid."), field="cursor") from None


def encode_position(*keys: str) -> str:
    """The cursor of the page after the row with these sort keys."""
    return base64.urlsafe_b64encode(msgspec.json.encode(list(keys))).rstrip(b"=").decode()


def decode_position(cursor: str, *kinds: Callable[[str], Any]) -> tuple[Any, ...]:
    """The sort keys a cursor carries, each read by its kind (`uuid.UUID`, `datetime.fromisoformat`);
    anything else is a 400 on `cursor`."""
    try:
        keys = msgspec.json.decode(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(keys, list) or len(keys) != len(kinds):
            raise ValueError(cursor)
        return tuple(kind(key) for kind, key in zip(kinds, keys, strict=True))
    except (binascii.Error, ValueError, TypeError, msgspec.DecodeError):
        raise InvalidInput(N_("The cursor is not valid."), field="cursor") from None


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(N_("Must be between 1 and {maximum}."), field="limit", maximum=MAX_LIMIT)
    return limit


async def paginate(
    session: HubAsyncSession,
    statement: Select[*tuple[Any, ...]],
    id_column: Any,
    *,
    cursor: str | None,
    limit: int,
    newest_first: bool = True,
) -> tuple[list[Any], str | None]:
    """One page of `statement` ordered by `id_column`, and the cursor of the next page."""
    limit = check_limit(limit)
    if cursor:
        after = decode_cursor(cursor)
        statement = statement.where(id_column < after if newest_first else id_column > after)
    statement = statement.order_by(id_column.desc() if newest_first else id_column.asc()).limit(limit + 1)
    rows = list((await session.execute(statement)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(_row_id(rows[-1])) if more and rows else None
    return rows, next_cursor


def _row_id(row: Any) -> uuid.UUID:
    first = row[0]
    return first if isinstance(first, uuid.UUID) else first.id
