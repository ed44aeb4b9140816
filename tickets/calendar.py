"""Business time: the hours an organization works, in its time zone, without its holidays.

SLA targets count only these hours: a four-hour target set at 16:00 on a Thursday by a team
that works 09:00 to 17:00, Sunday to Thursday, falls due at 12:00 on Sunday.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# Weekday names as Python numbers them (Monday is 0).
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Far enough for any target: a calendar with a few open hours a year still ends the search.
SEARCH_DAYS = 3 * 366


@dataclass(frozen=True)
class BusinessCalendar:
    """Open hours per weekday as (start, end) local times, end after start (24:00 is `time.max`),
    and closed dates. No hours at all means the clock never stops: round the clock."""

    time_zone: str = "UTC"
    hours: dict[int, list[tuple[time, time]]] = field(default_factory=dict)
    holidays: frozenset[date] = frozenset()

    @property
    def round_the_clock(self) -> bool:
        return not any(self.hours.values())

    def _open_periods(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The open periods, in UTC, from the local day of `start` on, in order."""
        zone = ZoneInfo(self.time_zone)
        day = start.astimezone(zone).date()
        for _ in range(SEARCH_DAYS):
            if day not in self.holidays:
                for opens, closes in self.hours.get(day.weekday(), []):
                    begin = datetime.combine(day, opens, tzinfo=zone).astimezone(UTC)
                    end = (
                        datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
                        if closes == time.max
                        else datetime.combine(day, closes, tzinfo=zone)
                    ).astimezone(UTC)
                    if end > begin:
                        yield begin, end
            day += timedelta(days=1)

    def add(self, start: datetime, seconds: float) -> datetime:
        """The moment `seconds` of business time after `start`."""
        if self.round_the_clock:
            return start + timedelta(seconds=seconds)
        left = timedelta(seconds=max(seconds, 0))
        for begin, end in self._open_periods(start):
            begin = max(begin, start)
            if end <= begin:
                continue
            if left <= end - begin:
                return begin + left
            left -= end - begin
        raise ValueError("the calendar has no open hours within three years")

    def seconds_between(self, start: datetime, end: datetime) -> float:
        """Business seconds from `start` to `end` (zero when `end` is not later)."""
        if end <= start:
            return 0.0
        if self.round_the_clock:
            return (end - start).total_seconds()
        total = 0.0
        for begin, close in self._open_periods(start):
            if begin >= end:
                break
            overlap = min(close, end) - max(begin, start)
            total += max(overlap.total_seconds(), 0.0)
        return total
