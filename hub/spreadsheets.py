"""CSV files for people who open them in a spreadsheet."""

from __future__ import annotations

from typing import Any


def safe_cell(value: Any) -> str:
    """A CSV cell that a spreadsheet will not run as a formula (phone numbers stay as they are)."""
    text = "" if value is None else str(value)
    risky = text[:1] in ("=", "@", "\t", "\r") or (
        text[:1] in ("+", "-") and not text[1:].replace(" ", "").isdigit()
    )
    return "'" + text if risky else text
