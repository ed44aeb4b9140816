"""Pacing arithmetic on a controllable clock: gaps with jitter, long pauses, hourly and daily caps,
warm-up of a new number and the sending window, checked against moments worked out by hand."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from campaigns.pacing import API_RULES, PacingRules, PacingState, next_slot, record_send

# Riyadh is UTC+3: 09:00 local is 06:00Z.
RULES = PacingRules(
    min_gap_seconds=10,
    jitter_seconds=5,
    hourly_cap=None,
    daily_cap=None,
    pause_every=None,
    warmup_daily_caps=(),
    window_start=None,
    window_end=None,
    time_zone="Asia/Riyadh",
)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def send_all(rules: PacingRules, start: datetime, count: int, seed: int = 7) -> list[datetime]:
    """Send as soon as allowed, `count` times: the moments the sends began."""
    chooser, state, now, moments = random.Random(seed), PacingState(), start, []
    for _ in range(count):
        now = next_slot(state, rules, now)
        moments.append(now)
        state = record_send(state, rules, now, chooser)
    return moments


def test_gaps_are_at_least_the_minimum_plus_jitter_within_its_range() -> None:
    moments = send_all(RULES, utc(2026, 11, 23, 7), 200)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(moments)]
    assert min(gaps) >= 10
    assert max(gaps) <= 15
    assert max(gaps) - min(gaps) > 3  # the jitter does vary


def test_a_long_pause_every_n_sends() -> None:
    rules = PacingRules(**{**RULES.__dict__, "jitter_seconds": 0, "pause_every": 3, "pause_seconds": 600})
    moments = send_all(rules, utc(2026, 11, 23, 7), 7)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(moments)]
    assert gaps == [10, 10, 600, 10, 10, 600]


def test_the_hourly_cap_waits_for_the_hour_to_pass() -> None:
    rules = PacingRules(**{**RULES.__dict__, "jitter_seconds": 0, "hourly_cap": 4})
    start = utc(2026, 11, 23, 7)
    moments = send_all(rules, start, 6)
    assert moments[:4] == [start + timedelta(seconds=10 * n) for n in range(4)]
    assert moments[4] == start + timedelta(hours=1)  # the hour began with the first send
    assert moments[5] == start + timedelta(hours=1, seconds=10)


def test_the_window_and_the_daily_cap_move_sends_to_the_next_morning() -> None:
    rules = PacingRules(
        **{
            **RULES.__dict__,
            "jitter_seconds": 0,
            "daily_cap": 3,
            "window_start": time(9),
            "window_end": time(21),
        }
    )
    # 20:59:40 local: two sends fit before 21:00, the third waits for 09:00 the next day.
    moments = send_all(rules, utc(2026, 11, 23, 17, 59, 40), 5)
    assert moments[:2] == [utc(2026, 11, 23, 17, 59, 40), utc(2026, 11, 23, 17, 59, 50)]
    assert moments[2] == utc(2026, 11, 24, 6)  # 09:00 Riyadh
    assert moments[3] == utc(2026, 11, 24, 6, 0, 10)
    # Three on the 24th reach the cap: the fifth waits for the 25th's window.
    assert moments[4] == utc(2026, 11, 24, 6, 0, 20)
    sixth = send_all(rules, utc(2026, 11, 23, 17, 59, 40), 6)[5]
    assert sixth == utc(2026, 11, 25, 6)


def test_a_window_past_midnight() -> None:
    rules = PacingRules(**{**RULES.__dict__, "window_start": time(22), "window_end": time(2)})
    # 12:00 local waits for 22:00 local (19:00Z); 01:59 local may send.
    assert next_slot(PacingState(), rules, utc(2026, 11, 23, 9)) == utc(2026, 11, 23, 19)
    assert next_slot(PacingState(), rules, utc(2026, 11, 23, 22, 59)) == utc(2026, 11, 23, 22, 59)


def test_a_new_number_warms_up_with_lower_caps_for_its_first_days() -> None:
    rules = PacingRules(
        **{
            **RULES.__dict__,
            "min_gap_seconds": 1,
            "jitter_seconds": 0,
            "daily_cap": 10,
            "warmup_daily_caps": (2, 5),
        }
    )
    moments = send_all(rules, utc(2026, 11, 23, 6), 2 + 5 + 10 + 1)
    per_day: dict[str, int] = {}
    for moment in moments:
        day = moment.astimezone(ZoneInfo("Asia/Riyadh")).date().isoformat()  # the local day
        per_day[day] = per_day.get(day, 0) + 1
    # Day one: 2, day two: 5, then the daily cap of 10, then the rest.
    assert per_day == {"2026-11-23": 2, "2026-11-24": 5, "2026-11-25": 10, "2026-11-26": 1}


def test_the_api_channel_sends_at_once() -> None:
    moments = send_all(API_RULES, utc(2026, 11, 23, 3), 1000)
    assert set(moments) == {utc(2026, 11, 23, 3)}
