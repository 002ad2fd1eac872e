"""When time schedules fire: the trigger of any cron, interval or recurrence schedule
(``time_trigger``) and cron's own trigger. Pure functions of a schedule and a moment, no clock,
no waiting.

``pipesched next``, ``pipesched schedules`` and the daemon's timer all go through the
``TimeTrigger`` built here, so what the CLI prints is what the daemon fires.

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

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from cronsim import CronSim

from scheduler.core.runtimes import RunTimes
from scheduler.definitions.timing import check_cron, parse_seconds_field, split_cron
from scheduler.triggers.base import (
    COUNT_CAP,
    MICROSECOND,
    TimeTrigger,
    in_zone,
    require_aware,
    to_utc,
)
from scheduler.triggers.interval import IntervalTrigger
from scheduler.triggers.recurrence import recurrence_trigger

if TYPE_CHECKING:  # the schedule models (pydantic) are not needed to compute fire times
    from scheduler.definitions.schedule_loader import ScheduleCheck
    from scheduler.definitions.schedules import ScheduleDef

# -- cron -----------------------------------------------------------------------------------------

_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/Universal", "Etc/Zulu", "Universal", "Zulu"})

_Run = tuple[datetime, tuple[datetime, ...]]
_RUNS: dict[tuple[str, tzinfo], _Run] = {}
"""Per five-field expression and zone, the fire times last computed from a moment:
``(after, times)`` says ``times`` are the first fire times strictly after ``after``, one after
another with none between. A fact about the expression alone, so any trigger of it may answer
from it: at a start, each schedule's first fire times are asked for by the check, the catch-up
and the timer in turn, and schedules sharing an expression ask for the same ones. One entry per
expression and zone."""
_RUN_LENGTH = 2
_MAX_RUNS = 50_000


def _remember(key: tuple[str, tzinfo], run: _Run) -> None:
    if len(_RUNS) >= _MAX_RUNS and key not in _RUNS:
        _RUNS.clear()
    _RUNS[key] = run


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
        # cronsim walks a zone without DST (UTC) several times faster when handed Python's own
        # UTC: it then skips its DST bookkeeping, which cannot change a time in such a zone.
        self._walk_zone: tzinfo = UTC if zone.key in _UTC_NAMES else zone

    def _minutes_after(self, after: datetime) -> Iterator[datetime]:
        """The five-field expression's fire times strictly after ``after``, increasing in UTC.

        The first ones come from the expression's remembered run (see ``_RUNS``) when ``after``
        falls in it; a walk starts only when more are asked for."""
        key = (self.five, self._walk_zone)
        run = _RUNS.get(key)
        if run is not None and run[0] <= after and (ahead := [t for t in run[1] if t > after]):
            yield from ahead
            yield from self._walk(ahead[-1])
            return
        known: list[datetime] = []
        for moment in self._walk(after):
            if len(known) < _RUN_LENGTH:
                known.append(moment)
                _remember(key, (after, tuple(known)))
            yield moment

    def _walk(self, after: datetime) -> Iterator[datetime]:
        """cronsim's fire times strictly after ``after``. For fixed-time expressions cronsim walks
        wall-clock time, so in the second pass of an overlap it may hand back the first pass's
        time again: those are dropped here."""
        last = after
        for moment in CronSim(self.five, in_zone(after, self._walk_zone)):
            instant = to_utc(moment)
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
        low = max(start, self.start - MICROSECOND) if self.start is not None else start
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
        anchor = require_aware(explicit, "start")
    elif registered_at is not None:
        anchor = whole_seconds(require_aware(registered_at, "registered_at"))
    else:
        raise ValueError(
            f"schedule '{schedule.name}' counts from its first registration: pass registered_at"
        )
    if schedule.interval is not None:
        return IntervalTrigger(
            schedule.interval, anchor, zone, first=0 if explicit else 1, **bounds
        )
    assert schedule.recurrence is not None
    return recurrence_trigger(
        schedule.recurrence, zone, anchor, from_start=explicit is not None, **bounds
    )


def fire_run_times(trigger: TimeTrigger, nominal: datetime) -> RunTimes:
    """What the run of ``trigger``'s fire at ``nominal`` stands for: that time, and the data
    interval from the previous fire time to it (none when the pattern has no earlier time)."""
    nominal = require_aware(nominal, "nominal")
    start = trigger.interval_start(nominal)
    if start is None:
        return RunTimes(nominal_time=to_utc(nominal), zone=trigger.zone.key)
    return RunTimes(
        nominal_time=to_utc(nominal),
        interval_start=to_utc(start),
        interval_end=to_utc(nominal),
        zone=trigger.zone.key,
    )


def schedule_run_times(
    schedule: ScheduleDef, nominal: datetime, registered_at: datetime | None = None
) -> RunTimes:
    """``fire_run_times`` of a schedule's own trigger (``registered_at`` as for
    ``time_trigger``: only recurrences without a start need it). A schedule with no time
    trigger (a file drop) or none that can be built stands for ``nominal`` with no interval."""
    nominal = require_aware(nominal, "nominal")
    try:
        trigger = time_trigger(schedule, registered_at or nominal)
    except (ValueError, OverflowError, ArithmeticError):
        return RunTimes(nominal_time=to_utc(nominal), zone=schedule.zone.key)
    return fire_run_times(trigger, nominal)


def needs_registration(schedule: ScheduleDef) -> bool:
    """True when ``schedule_run_times`` needs the schedule's first registration: a Day, Week or
    Month recurrence without an explicit start counts its days from it. (An interval's run
    covers one interval before its fire, wherever it is anchored.)"""
    recurrence = schedule.recurrence
    if recurrence is None or recurrence.frequency in ("Minute", "Hour"):
        return False
    return recurrence.start_time is None and schedule.start is None


def fire_time_problems(
    schedule: ScheduleDef, now: datetime
) -> list[tuple[tuple[str | int, ...], str]]:
    """What keeps the daemon from computing a time schedule's fire times, each as (field,
    message); empty when it can (and for an on_change schedule). The same ``time_trigger`` the
    daemon registers, counted from ``now`` as a registration now would be, asked for its next
    two fire times (a cron's next one): a schedule whose next fire would fall past year 9999 is refused, one whose
    ``end`` has passed is not."""
    if schedule.on_change is not None:
        return []
    field: tuple[str | int, ...] = (schedule.kind,)
    try:
        trigger = time_trigger(schedule, now)
        after = now - MICROSECOND
        if trigger.start is not None and trigger.start > after:
            after = trigger.start - MICROSECOND
        # A cron's walk past its first time is the walk to it again (cronsim fails only on the
        # expression, which the trigger checked, and past year 9999 a walk just ends): its first
        # time says what two would, for half the walking.
        upcoming = trigger.next_times(after, 1 if isinstance(trigger, CronTrigger) else 2)
    except (ValueError, OverflowError, ArithmeticError) as exc:
        where = f"{schedule.kind} of schedule '{schedule.name}'"
        return [(field, f"the fire times of {where} cannot be computed: {exc}")]
    if not upcoming and (trigger.end is None or trigger.end > after):
        where = f"{schedule.kind} of schedule '{schedule.name}'"
        return [(field, f"{where} would next fire after year 9999")]
    return []


def fire_time_check(now: datetime) -> ScheduleCheck:
    """``fire_time_problems`` at ``now``, as the check the definitions loaders take."""
    return lambda schedule: fire_time_problems(schedule, now)


def whole_seconds(moment: datetime) -> datetime:
    """``moment`` without its microseconds: fire times counted from a registration read as
    ``09:14:03``, not ``09:14:03.482113``."""
    return moment.replace(microsecond=0)


def cron_trigger(expression: str, zone: ZoneInfo | str = "UTC") -> CronTrigger:
    """A bare expression's trigger, for ``pipesched next``. ValueError names what is wrong."""
    return CronTrigger(expression, zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone))
