"""Pacing arithmetic for one sending number: when its next message may go.

WhatsApp bans numbers that send too fast or too much too soon, so every sending channel keeps a
pacing state: a minimum gap between two sends plus random jitter, a longer pause every N
messages, hourly and daily caps (lower while a new number warms up) and a daily sending window
in the organization's time zone. The functions here are pure: they take the moment and the
state and answer a moment, so any clock can drive them; the state itself lives in the database
(one row a channel), where every worker process reads and writes it under a lock.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class PacingRules:
    min_gap_seconds: float = 8.0
    jitter_seconds: float = 4.0  # added to each gap, drawn anew for every send
    hourly_cap: int | None = 60
    daily_cap: int | None = 250
    pause_every: int | None = 50  # after this many sends in a row...
    pause_seconds: float = 300.0  # ...rest this long
    # Daily caps for the first days a number sends (day 1, day 2, ...); then `daily_cap`.
    warmup_daily_caps: tuple[int, ...] = (50, 100, 150)
    window_start: time | None = time(9)  # local; none: any time of day
    window_end: time | None = time(21)  # before start: the window runs past midnight
    time_zone: str = "UTC"


# The API channel talks to the business's own systems and may go as fast as they take.
API_RULES = PacingRules(
    min_gap_seconds=0.0,
    jitter_seconds=0.0,
    hourly_cap=None,
    daily_cap=None,
    pause_every=None,
    warmup_daily_caps=(),
    window_start=None,
    window_end=None,
)


@dataclass(frozen=True)
class PacingState:
    not_before: datetime | None = None  # the last send plus its gap (and any pause)
    hour_started_at: datetime | None = None  # the hourly count runs from here for an hour
    sent_this_hour: int = 0
    day: date | None = None  # the local day of `sent_today`
    sent_today: int = 0
    sent_in_a_row: int = 0  # since the last long pause
    first_day: date | None = None  # the local day this number first sent: its warm-up age


def _local(moment: datetime, rules: PacingRules) -> datetime:
    return moment.astimezone(ZoneInfo(rules.time_zone))


def daily_cap_on(rules: PacingRules, state: PacingState, day: date) -> int | None:
    """The cap of a local day: the warm-up's for a new number's first days, else the daily cap."""
    age = (day - state.first_day).days if state.first_day else 0
    caps = [cap for cap in (rules.daily_cap,) if cap is not None]
    if 0 <= age < len(rules.warmup_daily_caps):
        caps.append(rules.warmup_daily_caps[age])
    return min(caps) if caps else None


def _in_window(local: datetime, rules: PacingRules) -> bool:
    if rules.window_start is None or rules.window_end is None:
        return True
    at = local.time()
    if rules.window_start <= rules.window_end:
        return rules.window_start <= at < rules.window_end
    return at >= rules.window_start or at < rules.window_end  # past midnight


def _next_window_opening(moment: datetime, rules: PacingRules) -> datetime:
    """The first moment at or after `moment` inside the window."""
    local = _local(moment, rules)
    if _in_window(local, rules) or rules.window_start is None:
        return moment
    zone = ZoneInfo(rules.time_zone)
    opening = datetime.combine(local.date(), rules.window_start, tzinfo=zone)
    if opening <= local:
        opening = datetime.combine(local.date() + timedelta(days=1), rules.window_start, tzinfo=zone)
    return opening.astimezone(UTC)


def _next_day_opening(moment: datetime, rules: PacingRules) -> datetime:
    """The start of the next local day's sending (its window's opening, or midnight)."""
    zone = ZoneInfo(rules.time_zone)
    tomorrow = _local(moment, rules).date() + timedelta(days=1)
    return datetime.combine(tomorrow, rules.window_start or time(0), tzinfo=zone).astimezone(UTC)


def next_slot(state: PacingState, rules: PacingRules, now: datetime) -> datetime:
    """The earliest moment the next send may begin: `now` when it may go at once."""
    moment = max(now, state.not_before or now)
    for _ in range(400):  # each step moves forward; a calendar of caps settles in a few
        before = moment
        moment = _next_window_opening(moment, rules)
        if (
            rules.hourly_cap is not None
            and state.hour_started_at is not None
            and moment < state.hour_started_at + HOUR
            and state.sent_this_hour >= rules.hourly_cap
        ):
            moment = state.hour_started_at + HOUR
        day = _local(moment, rules).date()
        cap = daily_cap_on(rules, state, day)
        if cap is not None and (cap == 0 or (state.day == day and state.sent_today >= cap)):
            moment = _next_day_opening(moment, rules)
        if moment == before:
            return moment
    raise ValueError("the pacing rules leave no moment to send")


def record_send(state: PacingState, rules: PacingRules, at: datetime, chooser: random.Random) -> PacingState:
    """The state after a send that began at `at`: counts move on and the next gap is drawn."""
    day = _local(at, rules).date()
    hour_started, this_hour = state.hour_started_at, state.sent_this_hour
    if hour_started is None or at >= hour_started + HOUR:
        hour_started, this_hour = at, 0
    sent_today = state.sent_today if state.day == day else 0
    in_a_row = state.sent_in_a_row + 1
    gap = rules.min_gap_seconds + chooser.uniform(0, rules.jitter_seconds)
    if rules.pause_every and in_a_row >= rules.pause_every:
        gap, in_a_row = max(gap, rules.pause_seconds), 0
    return replace(
        state,
        not_before=at + timedelta(seconds=gap),
        hour_started_at=hour_started,
        sent_this_hour=this_hour + 1,
        day=day,
        sent_today=sent_today + 1,
        sent_in_a_row=in_a_row,
        first_day=state.first_day or day,
    )


PACING_FIELDS = (
    "min_gap_seconds",
    "jitter_seconds",
    "hourly_cap",
    "daily_cap",
    "pause_every",
    "pause_seconds",
    "warmup_daily_caps",
)


def rules_of(kind: str, stored: dict[str, Any]) -> PacingRules:
    """The defaults of the channel's kind, with the organization's changes."""
    base = API_RULES if kind == "api" else PacingRules()
    changes = {name: stored[name] for name in PACING_FIELDS if name in stored}
    if "warmup_daily_caps" in changes:
        changes["warmup_daily_caps"] = tuple(changes["warmup_daily_caps"])
    return replace(base, **changes)


def state_of(row: Any) -> PacingState:
    return PacingState(
        not_before=row.not_before,
        hour_started_at=row.hour_started_at,
        sent_this_hour=row.sent_this_hour,
        day=row.day,
        sent_today=row.sent_today,
        sent_in_a_row=row.sent_in_a_row,
        first_day=row.first_day,
    )
