"""Schedules in plain English, for ``pipesched schedules`` and ``pipesched next``.

Cron goes through cron-descriptor (the library behind many crontab explainers), in 24-hour time,
with day-of-week 0 as Sunday as crontab(5) has it; intervals and Azure recurrences have no such
library, so their phrasing is ours.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from scheduler.definitions.timing import split_cron
from scheduler.triggers.recurrence import is_patterned, wall_times

if TYPE_CHECKING:  # the schedule models (pydantic) are not needed to describe an expression
    from scheduler.definitions.schedules import OnChange, Recurrence, ScheduleDef

_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def describe_cron(expression: str) -> str:
    """``0 0 * * MON`` → ``At 00:00, only on Monday``. ValueError when it does not parse."""
    from cron_descriptor import FormatError, MissingFieldError, Options, get_description

    seconds, five = split_cron(expression)
    text = five if seconds is None else f"{seconds} {five}"
    options = Options()
    options.use_24hour_time_format = True
    options.day_of_week_start_index_zero = True  # crontab(5): 0 (and 7) is Sunday
    try:
        return str(get_description(text, options))
    except (FormatError, MissingFieldError, ValueError) as exc:
        raise ValueError(f"cannot describe cron expression {expression!r}: {exc}") from None


def describe_every(seconds: float) -> str:
    """``Every 15 minutes``, ``Every hour``, ``Every 90 seconds``: the largest unit that
    divides the span evenly, so ``1h30m`` reads ``Every 90 minutes``."""
    if seconds != int(seconds):
        return f"Every {seconds:g} seconds"
    whole = int(seconds)
    for unit, size in _UNITS:
        if whole % size == 0:
            count = whole // size
            return f"Every {unit}" if count == 1 else f"Every {count} {unit}s"
    return f"Every {whole} seconds"  # pragma: no cover - seconds always divide


def describe_recurrence(recurrence: Recurrence, anchor: datetime | None = None) -> str:
    """Azure's ScheduleRecurrence in words. ``anchor`` (start time or registration) fills in
    what the recurrence takes from it: the time of day, the weekday, the day of the month."""
    frequency, interval = recurrence.frequency, recurrence.interval
    if frequency in ("Minute", "Hour"):
        return describe_every(interval * (60 if frequency == "Minute" else 3600))
    unit = {"Day": "day", "Week": "week", "Month": "month"}[frequency]
    text = f"Every {unit}" if interval == 1 else f"Every {interval} {unit}s"
    if frequency == "Week":
        days: list[str] = list(recurrence.week_days) or ([anchor.strftime("%A")] if anchor else [])
        text += f" on {_join(days)}" if days else " on the weekday it starts"
    if frequency == "Month":
        if anchor is None:
            text += " on the day of the month it starts"
        else:
            text += f" on day {anchor.day}"
            if anchor.day > 28:
                text += " (the last day in shorter months)"
    return f"{text} {_times_phrase(recurrence, anchor)}"


def _times_phrase(recurrence: Recurrence, anchor: datetime | None) -> str:
    if recurrence.time_of_day:
        hour, minute = (int(p) for p in recurrence.time_of_day.split(":"))
        return f"at {hour:02d}:{minute:02d}"
    if anchor is None and not (recurrence.hours and recurrence.minutes):
        return "at the time of day it starts"
    times = wall_times(recurrence, anchor or datetime(2000, 1, 1))
    if len(times) <= 4:
        with_seconds = not is_patterned(recurrence) and any(t.second for t in times)
        fmt = "%H:%M:%S" if with_seconds else "%H:%M"
        return f"at {_join([t.strftime(fmt) for t in times])}"
    hours = sorted({t.hour for t in times})
    minutes = sorted({t.minute for t in times})
    return f"at minutes {_ranges(minutes)} past hours {_ranges(hours)}"


def describe_on_change(watch: OnChange) -> str:
    where = f"{watch.datastore}:{watch.path or '/'}"
    what = "files" if watch.patterns == ["*"] else f"files matching {_join(watch.patterns)}"
    how = "one run per file" if watch.mode == "per_file" else "one run per settled batch"
    return f"When {what} land in {where} ({how})"


def describe(
    schedule: ScheduleDef, anchor: datetime | None = None, *, with_zone: bool = True
) -> str:
    """One schedule in plain English, its zone in parentheses where wall-clock time matters
    (cron, Day/Week/Month recurrences), and its ``start``/``end`` bounds."""
    zone_matters = False
    if schedule.cron is not None:
        text, zone_matters = describe_cron(schedule.cron), True
    elif schedule.interval is not None:
        text = describe_every(schedule.interval)
    elif schedule.recurrence is not None:
        recurrence = schedule.recurrence
        start = recurrence.start_time or schedule.start or anchor
        start = start.astimezone(schedule.zone) if start is not None else None
        text = describe_recurrence(recurrence, start)
        zone_matters = recurrence.frequency in ("Day", "Week", "Month")
    elif schedule.on_change is not None:
        return describe_on_change(schedule.on_change)
    else:  # pragma: no cover - the model requires one kind
        raise ValueError(f"schedule '{schedule.name}' has no kind")
    if schedule.start is not None:
        text += f", from {_moment(schedule.start, schedule)}"
    if schedule.end is not None:
        text += f", until {_moment(schedule.end, schedule)}"
    if with_zone and zone_matters:
        text += f" ({schedule.timezone})"
    return text


def expression(schedule: ScheduleDef) -> str:
    """The schedule's short form: ``0 0 * * MON``, ``every 1h30m``, ``Week x2``, ``on_change``."""
    if schedule.cron is not None:
        return schedule.cron
    if schedule.interval is not None:
        return f"every {compact_span(schedule.interval)}"
    if schedule.recurrence is not None:
        rec = schedule.recurrence
        return rec.frequency if rec.interval == 1 else f"{rec.frequency} x{rec.interval}"
    return "on_change"


def compact_span(seconds: float) -> str:
    """A duration as schedules.yaml writes it: ``90s`` → ``1m30s``, ``5400`` → ``1h30m``."""
    if seconds != int(seconds):
        return f"{seconds:g}s"
    remaining, parts = int(seconds), []
    for suffix, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{suffix}")
    return "".join(parts) or "0s"


def _moment(moment: datetime, schedule: ScheduleDef) -> str:
    return moment.astimezone(schedule.zone).strftime("%Y-%m-%d %H:%M %Z")


def _join(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def _ranges(values: Sequence[int]) -> str:
    """``[0, 1, 2, 3, 7]`` → ``0-3 and 7``."""
    spans: list[str] = []
    run: list[int] = []
    for value in values:
        if run and value != run[-1] + 1:
            spans.append(_span(run))
            run = []
        run.append(value)
    if run:
        spans.append(_span(run))
    return _join(spans)


def _span(run: list[int]) -> str:
    return str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}"
