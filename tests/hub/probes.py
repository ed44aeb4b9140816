"""Endpoints guarded by `requires(area, level)` for every area, to test the one guard end to end."""

from __future__ import annotations

from typing import Any

from litestar import get

from hub.permissions import AREAS, requires


def _probe(area: str, level: str) -> Any:
    @get(f"/api/probe/{area}/{level}", guards=[requires(area, level)], name=f"probe-{area}-{level}")
    async def probe() -> dict[str, str]:
        return {"area": area, "level": level}

    return probe


PROBES = [_probe(area, level) for area in AREAS for level in ("read", "write")]
