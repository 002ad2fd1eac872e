"""Azure ML's ``ScheduleRecurrence``: how often a schedule fires, validated with Azure's rules
and turned into a schedule's ``recurrence:`` mapping. Its errors name the user's line."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

from scheduler.core.errors import DefinitionError, SourcePosition
from scheduler.definitions.schedules import FREQUENCIES, WEEK_DAYS

_SDK_DIR = str(Path(__file__).resolve().parent)


def _caller() -> SourcePosition:
    """Where the user's code called into the SDK: the first frame outside scheduler/sdk."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_SDK_DIR):
        frame = frame.f_back
    if frame is None:
        return SourcePosition(Path("<sdk>"), 1, 1)
    return SourcePosition(Path(frame.f_code.co_filename), frame.f_lineno, 1)


def _invalid(message: str, hint: str | None = None) -> DefinitionError:
    return DefinitionError(message, position=_caller(), hint=hint)


class ScheduleRecurrence:
    """How often a schedule fires (Azure's names and rules); ``time_zone`` takes an IANA name or
    a Windows one (``"Pacific Standard Time"``, Azure's TimeZone values)."""

    def __init__(
        self,
        frequency: str,
        interval: int,
        start_time: datetime | str | None = None,
        time_zone: Any = None,
        hours: list[int] | None = None,
        minutes: list[int] | None = None,
        week_days: list[str] | None = None,
        time_of_day: str | None = None,
    ) -> None:
        self.frequency = frequency
        self.interval = interval
        self.start_time = start_time
        self.time_zone = getattr(time_zone, "value", time_zone)  # Azure's TimeZone enum
        self.hours = hours
        self.minutes = minutes
        self.week_days = week_days
        self.time_of_day = time_of_day
        self.validate()

    def validate(self) -> None:
        """Azure's checks, raised at the caller's line."""
        if self.frequency not in FREQUENCIES:
            raise _invalid(
                f"ScheduleRecurrence: frequency must be one of {', '.join(FREQUENCIES)} "
                f"(got {self.frequency!r})"
            )
        if isinstance(self.interval, bool) or not isinstance(self.interval, int):
            raise _invalid(
                f"ScheduleRecurrence: interval must be an integer (got {self.interval!r})"
            )
        if self.interval < 1:
            raise _invalid(f"ScheduleRecurrence: interval must be at least 1 (got {self.interval})")
        if self.week_days and self.frequency != "Week":
            raise _invalid("ScheduleRecurrence: week_days can only be given with frequency='Week'")
        for day in self.week_days or ():
            if day not in WEEK_DAYS:
                raise _invalid(
                    f"ScheduleRecurrence: {day!r} is not a week day", hint=", ".join(WEEK_DAYS)
                )
        timed = self.hours is not None or self.minutes is not None or self.time_of_day is not None
        if timed and self.frequency not in ("Day", "Week"):
            raise _invalid(
                "ScheduleRecurrence: hours, minutes and time_of_day can only be given with "
                "frequency 'Day' or 'Week'"
            )
        if self.time_of_day is not None and (self.hours is not None or self.minutes is not None):
            raise _invalid("ScheduleRecurrence: give time_of_day or hours/minutes, not both")
        for value, top, what in ((self.hours, 23, "hours"), (self.minutes, 59, "minutes")):
            if value is not None and not all(isinstance(v, int) and 0 <= v <= top for v in value):
                raise _invalid(f"ScheduleRecurrence: {what} must be integers from 0 to {top}")
        if isinstance(self.start_time, str):
            try:
                datetime.fromisoformat(self.start_time)
            except ValueError:
                raise _invalid(
                    f"ScheduleRecurrence: start_time {self.start_time!r} is not an ISO date-time",
                    hint="e.g. 2026-01-05T00:00:00",
                ) from None
        elif self.start_time is not None and not isinstance(self.start_time, datetime):
            raise _invalid("ScheduleRecurrence: start_time must be a datetime or an ISO string")

    def _to_definition(self) -> dict[str, Any]:
        """The schedule's ``recurrence:`` mapping."""
        data: dict[str, Any] = {"frequency": self.frequency, "interval": self.interval}
        for key in ("week_days", "hours", "minutes", "time_of_day", "time_zone"):
            value = getattr(self, key)
            if value is not None and value != []:
                data[key] = list(value) if isinstance(value, list | tuple) else value
        if self.start_time is not None:
            start = self.start_time
            data["start_time"] = start.isoformat() if isinstance(start, datetime) else start
        return data

    @classmethod
    def _from_definition(
        cls, data: dict[str, Any], timezone: str | None = None
    ) -> ScheduleRecurrence:
        """From a ``recurrence:`` entry, whose defaults (``interval: 1``) may be left out; the
        schedule's ``timezone`` stands in for a missing ``time_zone``."""
        given = {k: v for k, v in data.items() if k in _RECURRENCE_KEYS}
        if timezone is not None and timezone != "UTC":
            given.setdefault("time_zone", timezone)
        return cls(**{"interval": 1, **given})

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self._to_definition().items())
        return f"ScheduleRecurrence({shown})"


_RECURRENCE_KEYS = frozenset(
    ("frequency", "interval", "start_time", "time_zone", "hours", "minutes", "week_days")
) | {"time_of_day"}
