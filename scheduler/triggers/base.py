"""What every time schedule's trigger answers, whatever its kind: the next fire time after a
moment, the next n, and the fire times in a span with their count. Pure functions of the trigger
and a moment: no clock, no waiting.

Every fire time is an aware datetime in the schedule's zone. ``next_after(t)`` is strictly after
``t``; instants are compared in UTC (Python compares two datetimes of one zone by wall time and
ignores ``fold``, which is wrong inside a DST overlap).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from itertools import islice
from zoneinfo import ZoneInfo

COUNT_CAP = 100_000
"""``times_between`` counts exactly up to this many fire times; ``COUNT_CAP + 1`` means more."""

_LOOKBACK_LIMIT = timedelta(days=366 * 400)
"""How far back ``previous_before`` looks for a fire time before giving up."""

MICROSECOND = timedelta(microseconds=1)
"""The smallest step between two instants: ``t - MICROSECOND`` is the last moment before ``t``."""


@dataclass(frozen=True)
class Fires:
    """Fire times in a span: ``times`` (at most the ``limit`` asked for) and ``count``, exact up
    to ``COUNT_CAP`` (``COUNT_CAP + 1`` stands for "more than that")."""

    times: list[datetime]
    count: int

    @property
    def more(self) -> bool:
        """True when the span holds more than ``COUNT_CAP`` fire times."""
        return self.count > COUNT_CAP


def in_zone(moment: datetime, zone: tzinfo) -> datetime:
    """``moment`` in ``zone`` with a canonical ``fold`` (``astimezone`` to the same zone is a
    no-op, so go through UTC)."""
    return moment.astimezone(UTC).astimezone(zone)


def require_aware(moment: datetime, what: str) -> datetime:
    """``moment`` itself; ValueError naming ``what`` when it is naive."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime (got {moment!r})")
    return moment


def to_utc(moment: datetime) -> datetime:
    """The same instant in UTC."""
    return moment.astimezone(UTC)


class TimeTrigger(ABC):
    """The fire times of one time schedule, bounded by its ``start`` and ``end`` (inclusive)."""

    def __init__(
        self, zone: ZoneInfo, *, start: datetime | None = None, end: datetime | None = None
    ) -> None:
        self.zone = zone
        self.start = to_utc(require_aware(start, "start")) if start is not None else None
        self.end = to_utc(require_aware(end, "end")) if end is not None else None

    @abstractmethod
    def _after(self, after: datetime) -> Iterator[datetime]:
        """Fire times strictly after ``after`` (UTC), increasing, ignoring start and end."""

    def iter_after(self, after: datetime) -> Iterator[datetime]:
        """Every fire time strictly after ``after``, in order, in the schedule's zone, until
        ``end``."""
        after = to_utc(require_aware(after, "after"))
        if self.start is not None and after < self.start:
            after = self.start - MICROSECOND  # a fire exactly at start counts
        try:
            for moment in self._after(after):
                if self.end is not None and to_utc(moment) > self.end:
                    return
                yield in_zone(moment, self.zone)
        except OverflowError:  # past year 9999: no more fire times
            return

    def next_after(self, after: datetime) -> datetime | None:
        """The first fire time strictly after ``after``; None when the schedule has ended."""
        return next(self.iter_after(after), None)

    def previous_before(self, moment: datetime) -> datetime | None:
        """The pattern's last fire time strictly before ``moment``, in the schedule's zone,
        ignoring ``start`` and ``end`` (the first fire of a bounded schedule still stands for
        the period since the pattern's previous time); None when the pattern has none.

        Looks back in windows that grow eightfold from one minute, walking forward through each
        as the timer does, so the answer is a time the timer would have fired: exact across DST.
        """
        moment = to_utc(require_aware(moment, "moment"))
        window = timedelta(minutes=1)
        while window <= _LOOKBACK_LIMIT:
            try:
                low = self._outside_overlap(moment - window)
            except OverflowError:  # before year 1: nothing earlier
                return None
            last = None
            try:
                for candidate in self._after(low):
                    if candidate >= moment:
                        break
                    last = candidate
            except OverflowError:
                pass
            if last is not None:
                return in_zone(last, self.zone)
            window *= 8
        return None

    def interval_start(self, nominal: datetime) -> datetime | None:
        """Where the data interval of the fire at ``nominal`` starts: the previous fire time
        (``previous_before``). The interval is ``[interval_start, nominal)``."""
        return self.previous_before(nominal)

    def _outside_overlap(self, moment: datetime) -> datetime:
        """``moment``, or two hours earlier when its wall time is one a DST change repeats: a
        walk that starts in the second pass of an overlap could give a fixed-time expression's
        second-pass time, which the timer, coming from before the overlap, never fires."""
        local = in_zone(moment, self.zone)
        other = local.replace(fold=1 - local.fold)
        if other.utcoffset() != local.utcoffset():
            return moment - timedelta(hours=2)
        return moment

    def next_times(self, after: datetime, n: int) -> list[datetime]:
        """The next ``n`` fire times strictly after ``after`` (fewer when the schedule ends)."""
        return list(islice(self.iter_after(after), max(n, 0)))

    def times_between(
        self, start: datetime, end: datetime, limit: int = 100, *, newest: bool = False
    ) -> Fires:
        """Fire times in ``(start, end]``: the oldest ``limit`` of them (the newest ``limit``,
        oldest first, with ``newest``) and how many there are (exact up to ``COUNT_CAP``)."""
        start, end = to_utc(require_aware(start, "start")), to_utc(require_aware(end, "end"))
        if end <= start:
            return Fires([], 0)
        count = self._count(start, end)
        if count == 0:  # the common answer at a start: nothing missed, no second walk
            return Fires([], 0)
        if newest and count > limit:
            return Fires(self._newest(start, end, limit), count)
        times: list[datetime] = []
        for moment in self.iter_after(start):
            if to_utc(moment) > end or len(times) >= limit:
                break
            times.append(moment)
        return Fires(times, count)

    def _count(self, start: datetime, end: datetime) -> int:
        count = 0
        for moment in self.iter_after(start):
            if to_utc(moment) > end:
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
                if to_utc(moment) > end:
                    break
                kept.append(moment)
            if len(kept) >= limit or low == start:
                return list(kept)
            window *= 8
