"""The inbound gate's window follows how long posts take: slow ones narrow it (once per bound,
whatever their number), posts done in time while it is in use widen it again, up to the most
allowed, and a post past the window is refused as work in progress."""

from __future__ import annotations

import contextlib
import time

import pytest

from hub.errors import Busy
from hub.throttle import Gate


def test_slow_posts_narrow_the_window_and_posts_in_time_widen_it() -> None:
    gate = Gate(64, max_wait=0.05)
    assert gate.window == 64

    # Posts that took longer than the bound in all (they waited just under it for their turn,
    # then took the rest): the first narrows the window by a tenth, another that ends in the
    # same stretch does not narrow it again, one in the next stretch does.
    with gate.enter(waited=0.04):
        time.sleep(0.02)
    assert gate.window == pytest.approx(64 * 0.9)
    with gate.enter(waited=0.04):
        time.sleep(0.02)
    assert gate.window == pytest.approx(64 * 0.9)
    time.sleep(0.05)
    with gate.enter(waited=0.04):
        time.sleep(0.02)
    assert gate.window == pytest.approx(64 * 0.81)

    # Many slow stretches never take it below the least.
    for _ in range(60):
        gate._narrowed_at = 0.0
        gate._learn(1.0, in_use=1)
    assert gate.window == Gate.LEAST

    # Full: one more is refused as work in progress, at the door and on entering.
    with contextlib.ExitStack() as held:
        for _ in range(Gate.LEAST):
            held.enter_context(gate.enter())
        assert gate.overloaded() == "in_progress"
        with pytest.raises(Busy) as refused, gate.enter():
            pass
        assert refused.value.reason == "in_progress"

    # Posts done in time while the window is at least half used widen it, one over its size each:
    # of two in progress in a window of 4, the first to end does, the last (alone) does not.
    gate.window = 4.0
    with contextlib.ExitStack() as held:
        for _ in range(2):
            held.enter_context(gate.enter())
    assert gate.window == pytest.approx(4.25)

    # A quiet process (one post at a time in a wide window) learns nothing from it.
    gate.window = 40.0
    with gate.enter():
        pass
    assert gate.window == 40.0

    # Never past the most allowed.
    gate.window = 63.99
    with contextlib.ExitStack() as held:
        for _ in range(40):
            held.enter_context(gate.enter())
    assert gate.window == 64
