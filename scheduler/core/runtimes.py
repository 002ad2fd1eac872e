"""The time a run stands for: its nominal time and its data interval, and how steps see them.

A run started by a time schedule stands for the fire time it was started for (``nominal_time``,
even when it starts late, in a catch-up or a backfill) and covers the data interval from the
schedule's previous fire time to this one (``[interval_start, interval_end)``). A manual, API or
file-drop run stands for the moment it was requested and has no interval.

The store keeps the instants in UTC and the schedule's zone by name. JSON shows the UTC
instants; templates (``${{run.nominal_time}}``...) and the ``PIPESCHED_NOMINAL_TIME`` family of
variables give ISO 8601 with the schedule zone's offset, and ``nominal_date`` is the date in that
zone. A run without a zone (not started by a schedule) is shown in UTC. A missing interval is
an empty string in templates and variables, so every step sees every name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

TEMPLATE_FIELDS = ("nominal_time", "nominal_date", "interval_start", "interval_end")
"""The ``${{run.*}}`` names a run's time gives."""

ENVIRONMENT_NAMES = {
    "nominal_time": "PIPESCHED_NOMINAL_TIME",
    "interval_start": "PIPESCHED_INTERVAL_START",
    "interval_end": "PIPESCHED_INTERVAL_END",
}
"""The variable each time is given to a step process in (empty when the run has none)."""


def zone_named(name: str | None) -> tzinfo:
    """The zone called ``name``; UTC for None or a name this machine does not know."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


@dataclass(frozen=True)
class RunTimes:
    """What a run stands for: an aware nominal time, the interval ending at it (both ends or
    neither), and the name of the zone it is shown in (None: UTC)."""

    nominal_time: datetime
    interval_start: datetime | None = None
    interval_end: datetime | None = None
    zone: str | None = None

    def __post_init__(self) -> None:
        for name in ("nominal_time", "interval_start", "interval_end"):
            moment = getattr(self, name)
            if moment is not None and moment.utcoffset() is None:
                raise ValueError(f"{name} must be an aware datetime (got {moment!r})")
        if (self.interval_start is None) != (self.interval_end is None):
            raise ValueError("a run's interval has both ends or none")

    def local(self, moment: datetime) -> datetime:
        """``moment`` in the run's zone."""
        return moment.astimezone(zone_named(self.zone))

    def local_iso(self, moment: datetime | None) -> str:
        """ISO 8601 with the zone's offset (``2026-03-29T02:00:00+02:00``); "" for None."""
        return "" if moment is None else self.local(moment).isoformat()

    @property
    def nominal_date(self) -> str:
        """The nominal time's date in the run's zone, ``YYYY-MM-DD``."""
        return self.local(self.nominal_time).date().isoformat()

    def template_values(self) -> dict[str, str]:
        """The ``run`` namespace's time fields, as templates substitute them."""
        return {
            "nominal_time": self.local_iso(self.nominal_time),
            "nominal_date": self.nominal_date,
            "interval_start": self.local_iso(self.interval_start),
            "interval_end": self.local_iso(self.interval_end),
        }

    @property
    def from_schedule(self) -> bool:
        """True for a run a schedule (or a backfill of one) started: it has a zone, or an
        interval (a run read back from JSON, which gives no zone)."""
        return self.zone is not None or self.interval_start is not None

    def describe(self, arrow: str = "→") -> str:
        """One line for people: ``2026-03-29 03:00 CEST (interval 03-28 02:00 CET → 03-29
        03:00 CEST)``, the zone's abbreviation on each end only when the two differ."""
        nominal = self.local(self.nominal_time)
        text = _wall(nominal, "%Y-%m-%d ") + nominal.strftime(" %Z")
        if self.interval_start is None or self.interval_end is None:
            return text
        start, end = self.local(self.interval_start), self.local(self.interval_end)
        day = "%m-%d " if start.year == end.year == nominal.year else "%Y-%m-%d "
        zones = start.tzname() != end.tzname()
        ends = [
            _wall(moment, day) + (moment.strftime(" %Z") if zones else "")
            for moment in (start, end)
        ]
        return f"{text} (interval {ends[0]} {arrow} {ends[1]})"

    def environment(self) -> dict[str, str]:
        """The ``PIPESCHED_*`` variables a step process reads its run's time from."""
        values = self.template_values()
        return {variable: values[name] for name, variable in ENVIRONMENT_NAMES.items()}


def _wall(moment: datetime, day: str) -> str:
    """The wall time, to the minute unless it has seconds."""
    return moment.strftime(day + ("%H:%M:%S" if moment.second else "%H:%M"))


def request_times(requested_at: datetime) -> RunTimes:
    """A run not started by a time schedule: it stands for when it was requested."""
    return RunTimes(nominal_time=requested_at.astimezone(UTC))
