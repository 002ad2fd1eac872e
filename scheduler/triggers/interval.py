"""A fixed cadence in real time: ``every`` seconds from an anchor. DST does not touch it: the
arithmetic is on UTC instants, in whole microseconds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from scheduler.triggers.base import (
    COUNT_CAP,
    MICROSECOND,
    TimeTrigger,
    in_zone,
    require_aware,
    to_utc,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
        self.step_us = step // MICROSECOND
        if self.step_us <= 0:
            raise ValueError(f"an interval must be positive (got {every!r})")
        self.anchor = to_utc(require_aware(anchor, "anchor"))
        self.first = first
        self._anchor_us = (self.anchor - _EPOCH) // MICROSECOND

    def _index_after(self, moment: datetime) -> int:
        """The smallest k >= first with anchor + k*step > moment."""
        offset = (moment - _EPOCH) // MICROSECOND - self._anchor_us
        return max(self.first, offset // self.step_us + 1)

    def _at(self, k: int) -> datetime:
        return _EPOCH + timedelta(microseconds=self._anchor_us + k * self.step_us)

    def _after(self, after: datetime) -> Iterator[datetime]:
        k = self._index_after(after)
        while True:
            yield self._at(k)
            k += 1

    def interval_start(self, nominal: datetime) -> datetime | None:
        """``nominal`` less one interval: an interval schedule's fire at t covers [t - every, t),
        its first fire too."""
        moment = to_utc(require_aware(nominal, "nominal"))
        try:
            return in_zone(moment - self.step_us * MICROSECOND, self.zone)
        except OverflowError:
            return None

    def _count(self, start: datetime, end: datetime) -> int:
        low = max(start, self.start - MICROSECOND) if self.start is not None else start
        high = min(end, self.end) if self.end is not None else end
        if high <= low:
            return 0
        count = max(0, self._index_after(high) - self._index_after(low))
        return min(count, COUNT_CAP + 1)

    def __repr__(self) -> str:
        return f"IntervalTrigger({self.step_us / 1e6}s from {self.anchor.isoformat()})"
