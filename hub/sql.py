"""SQL pieces every package uses: LIKE patterns that match themselves, and tags kept as JSON."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import String, cast


def like_literal(text: str) -> str:
    """Text for a LIKE pattern (escaped by a backslash) that matches itself only."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def has_tag(column: Any, tag: str) -> Any:
    """Tags are stored as a JSON list of strings: match the tag, quoted, in its text."""
    return cast(column, String).like(f"%{like_literal(json.dumps(tag, ensure_ascii=False))}%", escape="\\")
