"""Azure ML's ScheduleRecurrence (the Logic Apps recurrence model) as a trigger.

What each field means, after Azure's documentation:

- ``Minute``/``Hour``: every ``interval`` minutes/hours of real time from the anchor.
- ``Day``: every ``interval`` days from the anchor's date, at ``time_of_day``, or at each
  ``hours`` x ``minutes`` (a missing one of the two taken from the anchor), or else at the
  anchor's time of day.
- ``Week``: every ``interval`` weeks on ``week_days`` (default: the anchor's weekday), at the
  times as for ``Day``. Weeks start on Monday; the anchor's week is week 0, so ``interval: 2``
  with Monday and Wednesday fires on both days of weeks 0, 2, 4, ...
- ``Month``: every ``interval`` months on the anchor's day of the month (the month's last day
  when it is shorter), at the anchor's time of day.

The anchor is ``start_time`` (or the schedule's ``start``), else the schedule's first
registration. Without hours, minutes, time of day or week days, an explicit start time is itself
the first fire (Azure: "runs the first workload at the specified start time"); with them, the
first fire is the next time the pattern gives after it (Azure: "if start_time matches week_days
and time_of_day, the first workload does not run at start_time"). Unlike Azure, a registration
is never a fire: a recurrence without a start time does not fire on creation.

Wall-clock times are the schedule zone's: a time inside a DST gap fires at the first valid time
after it (02:30 → 03:00 in Europe/Berlin), a time inside an overlap fires once, in the first pass.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from datetime import MAXYEAR, UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from scheduler.triggers.base import TimeTrigger, in_zone
from scheduler.triggers.interval import IntervalTrigger

if TYPE_CHECKING:  # the schedule models (pydantic) are not needed to compute fire times
    from scheduler.definitions.schedules import Recurrence

WEEK_DAY_INDEX = {
    name: index
    for index, name in enumerate(
        ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    )
}
_DAY = timedelta(days=1)
_US = timedelta(microseconds=1)


def recurrence_trigger(
    recurrence: Recurrence,
    zone: ZoneInfo,
    anchor: datetime,
    *,
    from_start: bool,
    start: datetime | None = None,
    end: datetime | None = None,
) -> TimeTrigger:
    """Minute and Hour recurrences are real-time intervals; Day, Week and Month are calendar
    patterns in the zone's wall-clock time."""
    if recurrence.frequency in ("Minute", "Hour"):
        unit = 60 if recurrence.frequency == "Minute" else 3600
        return IntervalTrigger(
            recurrence.interval * unit,
            anchor,
            zone,
            first=0 if from_start else 1,
            start=start,
            end=end,
        )
    return RecurrenceTrigger(recurrence, zone, anchor, from_start=from_start, start=start, end=end)


def is_patterned(recurrence: Recurrence) -> bool:
    """True when the recurrence names its own days or times (Azure's "recurrence with schedule")."""
    return bool(
        recurrence.week_days or recurrence.hours or recurrence.minutes or recurrence.time_of_day
    )


def wall_times(recurrence: Recurrence, anchor: datetime) -> list[time]:
    """The times of day a Day or Week recurrence fires at, sorted."""
    if recurrence.time_of_day:
        hour, minute = (int(part) for part in recurrence.time_of_day.split(":"))
        return [time(hour, minute)]
    if not is_patterned(recurrence):
        return [time(anchor.hour, anchor.minute, anchor.second)]
    hours = recurrence.hours or [anchor.hour]
    minutes = recurrence.minutes or [anchor.minute]
    return sorted({time(h, m) for h in hours for m in minutes})


def resolve_wall_time(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant a naive wall-clock time fires at in ``zone``: itself, in the first pass of an
    overlap (fold 0); the first valid wall minute after it when a gap swallows it, as cron does."""
    moment = wall
    for _ in range(24 * 60):
        aware = moment.replace(tzinfo=zone, fold=0)
        if in_zone(aware, zone).replace(tzinfo=None) == moment:
            return aware
        moment += timedelta(minutes=1)
    raise ValueError(f"no valid time after {wall} in {zone.key}")  # pragma: no cover


class RecurrenceTrigger(TimeTrigger):
    """A Day, Week or Month recurrence: eligible dates counted from the anchor, wall times on
    each. Eligible dates are found arithmetically, so ``interval: 1000`` days costs no more
    than 1."""

    def __init__(
        self,
        recurrence: Recurrence,
        zone: ZoneInfo,
        anchor: datetime,
        *,
        from_start: bool,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> None:
        if recurrence.frequency not in ("Day", "Week", "Month"):
            raise ValueError(f"not a calendar frequency: {recurrence.frequency}")
        super().__init__(zone, start=start, end=end)
        self.frequency = recurrence.frequency
        self.interval = recurrence.interval
        self.anchor = in_zone(anchor, zone)
        self.anchor_date = self.anchor.date()
        self.times = wall_times(recurrence, self.anchor)
        self.week_days = sorted({WEEK_DAY_INDEX[d] for d in recurrence.week_days}) or [
            self.anchor_date.weekday()
        ]
        # An explicit start fires itself only without a pattern (Azure); a registration never.
        inclusive = from_start and not is_patterned(recurrence)
        self.floor = self.anchor.astimezone(UTC) - (_US if inclusive else timedelta(0))

    def _after(self, after: datetime) -> Iterator[datetime]:
        lower = max(after, self.floor)
        last = lower
        day = self._eligible(in_zone(lower, self.zone).date())
        while True:
            for wall in self.times:
                instant = resolve_wall_time(datetime.combine(day, wall), self.zone).astimezone(UTC)
                if instant > last:  # two gap times resolve to one instant: fire it once
                    last = instant
                    yield instant
            day = self._eligible(day + _DAY)

    def _eligible(self, day: date) -> date:
        """The first date on or after ``day`` (and the anchor's) that the recurrence fires on."""
        day = max(day, self.anchor_date)
        if self.frequency == "Day":
            offset = (day - self.anchor_date).days
            return self.anchor_date + _DAY * (-(-offset // self.interval) * self.interval)
        if self.frequency == "Week":
            return self._eligible_week_day(day)
        return self._eligible_month_day(day)

    def _eligible_week_day(self, day: date) -> date:
        week0 = self.anchor_date - _DAY * self.anchor_date.weekday()
        while True:
            week = (day - week0).days // 7
            monday = week0 + _DAY * (7 * week)
            if week % self.interval == 0:
                later = [d for d in self.week_days if d >= day.weekday()]
                if later:
                    return monday + _DAY * later[0]
                week += self.interval
            else:
                week += self.interval - week % self.interval
            day = week0 + _DAY * (7 * week)

    def _eligible_month_day(self, day: date) -> date:
        first = self.anchor_date.year * 12 + self.anchor_date.month - 1
        month = day.year * 12 + day.month - 1
        month = first + -(-(month - first) // self.interval) * self.interval
        while True:
            year, index = divmod(month, 12)
            if year > MAXYEAR:
                raise OverflowError(f"year {year} is past {MAXYEAR}")
            length = calendar.monthrange(year, index + 1)[1]
            candidate = date(year, index + 1, min(self.anchor_date.day, length))
            if candidate >= day:
                return candidate
            month += self.interval

    def __repr__(self) -> str:
        return (
            f"RecurrenceTrigger({self.frequency} x{self.interval} from "
            f"{self.anchor.isoformat()} {self.zone.key})"
        )
