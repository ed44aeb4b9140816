"""An event, a handler and a task that record what reached them; imported by every test process."""

from __future__ import annotations

from typing import ClassVar

from hub.events import Event, event_type, handles
from hub.tasks import task

HANDLED: list[str] = []
FAIL_ONCE: set[str] = set()
RAN: list[str] = []


@event_type
class Pinged(Event, frozen=True, kw_only=True):
    name: ClassVar[str] = "tests.pinged"
    note: str


@handles(Pinged, name="tests.record_ping")
async def record_ping(event: Pinged) -> None:
    if event.note in FAIL_ONCE:
        FAIL_ONCE.discard(event.note)
        raise RuntimeError("the first delivery fails")
    HANDLED.append(event.note)


@task("tests.timed")
async def timed(note: str) -> None:
    RAN.append(note)
