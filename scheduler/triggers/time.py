"""When time schedules fire: pure functions of a schedule and a moment, no clock, no waiting.

``pipesched next``, ``pipesched schedules`` and the daemon's APScheduler jobs all go through the
``TimeTrigger`` built here, so what the CLI prints is what the daemon fires.

Every fire time is an aware datetime in the schedule's zone. ``next_after(t)`` is strictly after
``t``; instants are compared in UTC (Python compares two datetimes of one zone by wall time and
ignores ``fold``, which is wrong inside a DST overlap).

**cron** means what crontab(5) says, computed by cronsim: 0 and 7 are Sunday, and when both
day-of-month and day-of-week are restricted a day matching either fires (APScheduler 3's
``CronTrigger.from_crontab`` reads 0 as Monday and ANDs the two fields, so it is never used).
An optional sixth field, first, lists seconds: the schedule fires at each of those seconds of each
minute the five-field expression gives.

**DST** (Debian cron's rule, as cronsim computes it), for a zone with daylight saving time:

- *Gap* (spring forward, e.g. 02:00 → 03:00 in Europe/Berlin): a wall time that does not exist
  fires once, at the first valid time after it: ``30 2 * * *`` fires at 03:00 that day. An
  expression with ``*`` or a step in its minute or hour field fires at the times that exist:
  ``*/15 * * * *`` goes from 01:45 to 03:00, 15 real minutes; ``0 */4 * * *`` keeps 00:00, 04:00.
- *Overlap* (fall back, e.g. 03:00 → 02:00 in Berlin, 02:00 → 01:00 in New York): an expression
  with a fixed minute and hour (neither field starts with ``*``) fires once, in the first pass:
  ``30 1 * * *`` in New York fires at 01:30 EDT only. One with ``*`` or a step there fires in both
  passes: ``*/15 * * * *`` runs through the repeated hour, every 15 real minutes.
- Recurrences (``recurrence.py``) follow the same rule for their wall-clock times: a time in a gap
  fires at the first valid time after it, a time in an overlap fires once, in the first pass.
- Intervals, and Minute/Hour recurrences, are real time (UTC arithmetic): DST does not touch them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import TYPE_CHECKING, NamedTuple
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from cronsim import CronSim

from scheduler.definitions.timing import check_cron, parse_seconds_field, split_cron

if TYPE_CHECKING:
    from scheduler.definitions.schedules import ScheduleDef

COUNT_CAP = 100_000
"""``times_between`` counts exactly up to this many fire times; ``COUNT_CAP + 1`` means more."""

_US = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Fires(NamedTuple):
    """Fire times in a span: ``times`` (at most the ``limit`` asked for) and ``count``, exact up
    to ``COUNT_CAP`` (``COUNT_CAP + 1`` stands for "more than that")."""

    times: list[datetime]
    count: int

    @property
    def more(self) -> bool:
        """True when the span holds more than ``COUNT_CAP`` fire times."""
        return self.count > COUNT_CAP


def in_zone(moment: datetime, zone: ZoneInfo) -> datetime:
    """``moment`` in ``zone`` with a canonical ``fold`` (``astimezone`` to the same zone is a
    no-op, so go through UTC)."""
    return moment.astimezone(UTC).astimezone(zone)


def _aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime (got {moment!r})")
    return moment


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


class TimeTrigger(ABC):
    """The fire times of one time schedule, bounded by its ``start`` and ``end`` (inclusive)."""

    def __init__(
        self, zone: ZoneInfo, *, start: datetime | None = None, end: datetime | None = None
    ) -> None:
        self.zone = zone
        self.start = _utc(_aware(start, "start")) if start is not None else None
        self.end = _utc(_aware(end, "end")) if end is not None else None

    @abstractmethod
    def _after(self, after: datetime) -> Iterator[datetime]:
        """Fire times strictly after ``after`` (UTC), increasing, ignoring start and end."""

    def iter_after(self, after: datetime) -> Iterator[datetime]:
        """Every fire time strictly after ``after``, in order, in the schedule's zone, until
        ``end``."""
        after = _utc(_aware(after, "after"))
        if self.start is not None and after < self.start:
            after = self.start - _US  # a fire exactly at start counts
        try:
            for moment in self._after(after):
                if self.end is not None and _utc(moment) > self.end:
                    return
                yield in_zone(moment, self.zone)
        except OverflowError:  # past year 9999: no more fire times
            return

    def next_after(self, after: datetime) -> datetime | None:
        """The first fire time strictly after ``after``; None when the schedule has ended."""
        return next(self.iter_after(after), None)

    def next_times(self, after: datetime, n: int) -> list[datetime]:
        """The next ``n`` fire times strictly after ``after`` (fewer when the schedule ends)."""
        return list(islice(self.iter_after(after), max(n, 0)))

    def times_between(
        self, start: datetime, end: datetime, limit: int = 100, *, newest: bool = False
    ) -> Fires:
        """Fire times in ``(start, end]``: the oldest ``limit`` of them (the newest ``limit``,
        oldest first, with ``newest``) and how many there are (exact up to ``COUNT_CAP``)."""
        start, end = _utc(_aware(start, "start")), _utc(_aware(end, "end"))
        if end <= start:
            return Fires([], 0)
        count = self._count(start, end)
        if newest and count > limit:
            return Fires(self._newest(start, end, limit), count)
        times: list[datetime] = []
        for moment in self.iter_after(start):
            if _utc(moment) > end or len(times) >= limit:
                break
            times.append(moment)
        return Fires(times, count)

    def _count(self, start: datetime, end: datetime) -> int:
        count = 0
        for moment in self.iter_after(start):
            if _utc(moment) > end:
                break
            count += 1
            if count > COUNT_CAP:
                break
        return count

    def _newest(self, start: datetime, end: datetime, limit: int) -> list[datetime]:
        """The last ``limit`` fire times in (start, end], found by looking back in windows that
        grow eightfold, so a dense schedule costs one hour of fires and a sparse one a few
        windows."""
        if limit <= 0:
            return []
        window = timedelta(hours=1)
        while True:
            low = start if end - start <= window else end - window
            kept: deque[datetime] = deque(maxlen=limit)
            for moment in self.iter_after(low):
                if _utc(moment) > end:
                    break
                kept.append(moment)
            if len(kept) >= limit or low == start:
                return list(kept)
            window *= 8


# -- cron -----------------------------------------------------------------------------------------


class CronTrigger(TimeTrigger):
    """A cron expression (five fields, or six with seconds first; ``@daily`` and friends)."""

    def __init__(
        self,
        expression: str,
        zone: ZoneInfo,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> None:
        check_cron(expression)
        super().__init__(zone, start=start, end=end)
        self.expression = expression
        seconds, self.five = split_cron(expression)
        self.seconds = parse_seconds_field(seconds) if seconds is not None else None

    def _minutes_after(self, after: datetime) -> Iterator[datetime]:
        """The five-field expression's fire times strictly after ``after``, increasing in UTC.

        For fixed-time expressions cronsim walks wall-clock time, so in the second pass of an
        overlap it may hand back the first pass's time again: those are dropped here."""
        last = after
        for moment in CronSim(self.five, in_zone(after, self.zone)):
            instant = _utc(moment)
            if instant > last:
                last = instant
                yield instant

    def _after(self, after: datetime) -> Iterator[datetime]:
        if self.seconds is None:
            yield from self._minutes_after(after)
            return
        # A minute fire M covers M+0s .. M+59s: start a minute back to keep this minute's rest.
        for minute in self._minutes_after(after - timedelta(minutes=1)):
            for second in self.seconds:
                moment = minute + timedelta(seconds=second)
                if moment > after:
                    yield moment

    def _count(self, start: datetime, end: datetime) -> int:
        if self.seconds is None:
            return super()._count(start, end)
        # Count whole minutes at once: a minute-by-minute walk, not second by second.
        low = max(start, self.start - _US) if self.start is not None else start
        high = min(end, self.end) if self.end is not None else end
        count = 0
        for minute in self._minutes_after(low - timedelta(minutes=1)):
            if minute > high:
                break
            count += sum(1 for s in self.seconds if low < minute + timedelta(seconds=s) <= high)
            if count > COUNT_CAP:
                return COUNT_CAP + 1
        return count

    def __repr__(self) -> str:
        return f"CronTrigger({self.expression!r}, {self.zone.key})"


# -- interval -------------------------------------------------------------------------------------


class IntervalTrigger(TimeTrigger):
    """A fixed cadence in real time: ``anchor + k * every`` for ``k >= first``.

    ``first`` is 0 when the anchor is an explicit start (it fires then), 1 when the anchor is the
    schedule's registration (no fire on creation). Microsecond integers, so a 1-second interval
    over years neither drifts nor costs more than a division."""

    def __init__(
        self,
        every: float | timedelta,
        anchor: datetime,
        zone: ZoneInfo,
        *,
        first: int = 1,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> None:
        super().__init__(zone, start=start, end=end)
        step = every if isinstance(every, timedelta) else timedelta(seconds=every)
        self.step_us = step // _US
        if self.step_us <= 0:
            raise ValueError(f"an interval must be positive (got {every!r})")
        self.anchor = _utc(_aware(anchor, "anchor"))
        self.first = first
        self._anchor_us = (self.anchor - _EPOCH) // _US

    def _index_after(self, moment: datetime) -> int:
        """The smallest k >= first with anchor + k*step > moment."""
        offset = (moment - _EPOCH) // _US - self._anchor_us
        return max(self.first, offset // self.step_us + 1)

    def _at(self, k: int) -> datetime:
        return _EPOCH + timedelta(microseconds=self._anchor_us + k * self.step_us)

    def _after(self, after: datetime) -> Iterator[datetime]:
        k = self._index_after(after)
        while True:
            yield self._at(k)
            k += 1

    def _count(self, start: datetime, end: datetime) -> int:
        low = max(start, self.start - _US) if self.start is not None else start
        high = min(end, self.end) if self.end is not None else end
        if high <= low:
            return 0
        count = max(0, self._index_after(high) - self._index_after(low))
        return min(count, COUNT_CAP + 1)

    def __repr__(self) -> str:
        return f"IntervalTrigger({self.step_us / 1e6}s from {self.anchor.isoformat()})"


# -- building -------------------------------------------------------------------------------------


def time_trigger(schedule: ScheduleDef, registered_at: datetime | None = None) -> TimeTrigger:
    """The trigger of a cron, interval or recurrence schedule.

    ``registered_at`` is the schedule's first registration (the store records it): intervals and
    recurrences count from it when the schedule gives no ``start``/``start_time``."""
    zone = schedule.zone
    bounds = {"start": schedule.start, "end": schedule.end}
    if schedule.cron is not None:
        return CronTrigger(schedule.cron, zone, **bounds)
    if schedule.interval is None and schedule.recurrence is None:
        raise ValueError(
            f"schedule '{schedule.name}' is a {schedule.kind} schedule, not a time one"
        )
    explicit = schedule.start
    if schedule.recurrence is not None and schedule.recurrence.start_time is not None:
        explicit = schedule.recurrence.start_time
    if explicit is not None:
        anchor = _aware(explicit, "start")
    elif registered_at is not None:
        anchor = whole_seconds(_aware(registered_at, "registered_at"))
    else:
        raise ValueError(
            f"schedule '{schedule.name}' counts from its first registration: pass registered_at"
        )
    if schedule.interval is not None:
        return IntervalTrigger(
            schedule.interval, anchor, zone, first=0 if explicit else 1, **bounds
        )
    from scheduler.triggers.recurrence import recurrence_trigger

    assert schedule.recurrence is not None
    return recurrence_trigger(
        schedule.recurrence, zone, anchor, from_start=explicit is not None, **bounds
    )


def whole_seconds(moment: datetime) -> datetime:
    """``moment`` without its microseconds: fire times counted from a registration read as
    ``09:14:03``, not ``09:14:03.482113``."""
    return moment.replace(microsecond=0)


def cron_trigger(expression: str, zone: ZoneInfo | str = "UTC") -> CronTrigger:
    """A bare expression's trigger, for ``pipesched next``. ValueError names what is wrong."""
    return CronTrigger(expression, zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone))


# -- APScheduler ----------------------------------------------------------------------------------


class APSchedulerTrigger(BaseTrigger):
    """The daemon's APScheduler (3.x) face of a ``TimeTrigger``: the job fires at exactly the
    times ``next``/``schedules`` print (handed over in UTC, the same instants). Jitter is not applied here: the dispatcher adds it after
    the nominal time is recorded, so the fire record keeps the nominal time."""

    __slots__ = ("trigger",)

    def __init__(self, trigger: TimeTrigger) -> None:
        self.trigger = trigger

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        # After a fire, the next is strictly after it (even if the wall clock went back: no
        # nominal time fires twice); on registration, a fire time equal to now still counts.
        after = previous_fire_time if previous_fire_time is not None else now - _US
        moment = self.trigger.next_after(after)
        # In UTC: APScheduler compares fire times with ``<=`` and sorts them, and Python
        # compares two datetimes of one zone by wall time, ignoring fold (wrong in an overlap).
        return moment.astimezone(UTC) if moment is not None else None

    def __str__(self) -> str:
        return f"pipesched[{self.trigger!r}]"

    def __repr__(self) -> str:
        return f"<APSchedulerTrigger {self.trigger!r}>"
