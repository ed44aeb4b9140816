"""Business-time arithmetic against cases worked out by hand on a calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from tickets.calendar import BusinessCalendar

HOUR = 3600.0
NINE_TO_FIVE = [(time(9), time(17))]
# Riyadh (UTC+3 all year), Sunday to Thursday.
RIYADH = BusinessCalendar(time_zone="Asia/Riyadh", hours=dict.fromkeys((6, 0, 1, 2, 3), NINE_TO_FIVE))
# New York, Monday to Friday: summer time starts on Sunday 8 March 2026.
NEW_YORK = BusinessCalendar(time_zone="America/New_York", hours=dict.fromkeys(range(5), NINE_TO_FIVE))


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("start", "seconds", "due"),
    [
        # Thursday 16:00 Riyadh (13:00Z) + 4 h: one hour on Thursday, the weekend, three on Sunday.
        (utc(2026, 11, 26, 13), 4 * HOUR, utc(2026, 11, 29, 9)),
        # Before opening: Sunday 07:00 Riyadh + 30 min is 09:30.
        (utc(2026, 11, 29, 4), 0.5 * HOUR, utc(2026, 11, 29, 6, 30)),
        # After closing: Tuesday 18:00 Riyadh + 1 h is Wednesday 10:00.
        (utc(2026, 12, 1, 15), HOUR, utc(2026, 12, 2, 7)),
        # A whole working week of 40 h from Sunday 09:00 ends Thursday 17:00.
        (utc(2026, 11, 29, 6), 40 * HOUR, utc(2026, 12, 3, 14)),
        # Exactly at closing time, the target is met at closing time, not the next morning.
        (utc(2026, 11, 29, 6), 8 * HOUR, utc(2026, 11, 29, 14)),
        # Zero time is the start itself, inside hours.
        (utc(2026, 11, 29, 7), 0, utc(2026, 11, 29, 7)),
    ],
)
def test_adding_business_time_in_riyadh(start: datetime, seconds: float, due: datetime) -> None:
    assert RIYADH.add(start, seconds) == due
    assert RIYADH.seconds_between(start, due) == seconds


def test_holidays_are_skipped() -> None:
    holiday = BusinessCalendar(
        time_zone="Asia/Riyadh", hours=RIYADH.hours, holidays=frozenset({date(2026, 11, 29)})
    )
    # Thursday 16:00 + 4 h: Sunday is a holiday, so Monday 12:00 Riyadh.
    assert holiday.add(utc(2026, 11, 26, 13), 4 * HOUR) == utc(2026, 11, 30, 9)
    assert holiday.seconds_between(utc(2026, 11, 26, 13), utc(2026, 11, 30, 9)) == 4 * HOUR


def test_a_change_to_summer_time_moves_opening_by_an_hour_in_utc() -> None:
    # Friday 6 March 16:00 EST (21:00Z) + 2 h: one hour on Friday, then Monday 9 March opens at
    # 09:00 EDT (13:00Z), so 10:00 EDT is 14:00Z.
    assert NEW_YORK.add(utc(2026, 3, 6, 21), 2 * HOUR) == utc(2026, 3, 9, 14)
    # In winter the same hours open at 14:00Z.
    assert NEW_YORK.add(utc(2026, 2, 27, 21), 2 * HOUR) == utc(2026, 3, 2, 15)


def test_periods_with_a_break_and_a_day_to_midnight() -> None:
    split = BusinessCalendar(time_zone="UTC", hours={0: [(time(9), time(12)), (time(13), time(17))]})
    # Monday 30 November 11:30 + 1 h: half an hour before the break, half after.
    assert split.add(utc(2026, 11, 30, 11, 30), HOUR) == utc(2026, 11, 30, 13, 30)
    assert split.seconds_between(utc(2026, 11, 30, 8), utc(2026, 11, 30, 18)) == 7 * HOUR
    whole_day = BusinessCalendar(time_zone="UTC", hours={0: [(time(0), time.max)]})
    # Monday 22:00 + 3 h: two hours to midnight, then the next Monday.
    assert whole_day.add(utc(2026, 11, 30, 22), 3 * HOUR) == utc(2026, 12, 7, 1)


def test_round_the_clock_is_plain_time() -> None:
    always = BusinessCalendar(time_zone="Asia/Riyadh")
    assert always.round_the_clock
    assert always.add(utc(2026, 11, 27, 23), 5 * HOUR) == utc(2026, 11, 28, 4)
    assert always.seconds_between(utc(2026, 11, 28, 4), utc(2026, 11, 27, 23)) == 0
