"""A schedule as ``pipesched schedules`` shows it (``ScheduleSummary``), and the same rebuilt
from a daemon's answer: standard library only, so that the command asks a running daemon
without loading the schedule models, the triggers or the store.

``GET /api/v1/schedules`` gives each ``schedules --json`` object plus what the table needs
besides (``daemon_fields``); ``summary_from_json`` turns that back into the summary, whose
``to_json`` is then the object the command would have made itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from scheduler.core.clock import iso


@dataclass
class ScheduleSummary:
    name: str
    pipeline: str
    kind: str
    source: str
    enabled: bool
    override: bool | None
    timezone: str
    description: str
    expression: str
    next_fire_times: list[datetime]
    ended: bool = False
    last_fire_time: datetime | None = None
    last_outcome: str | None = None
    last_run_id: str | None = None
    last_run_status: str | None = None
    last_run_fired_at: datetime | None = None
    watch: dict[str, Any] | None = field(default=None)
    # The schedule as its schedules.yaml entry would read (defaults left out): what the SDK's
    # Schedule shows as its recurrence, parameters and watched folder.
    definition: dict[str, Any] = field(default_factory=dict)
    # Why the schedule is not served (it fails validation, or its fire times cannot be
    # computed): None for a schedule that is.
    error: str | None = None
    # Stable across updates and renames (Schedule.update); None until the store registers it.
    id: str | None = None

    @property
    def next_fire_time(self) -> datetime | None:
        return self.next_fire_times[0] if self.next_fire_times else None

    def to_json(self) -> dict[str, Any]:
        """The ``schedules --json`` object. ``override`` is ``"enabled"``, ``"disabled"``
        or null; ``next_fire_times`` keep the schedule's own offset."""
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "pipeline": self.pipeline,
            "kind": self.kind,
            "source": self.source,
            "enabled": self.enabled,
            "override": None if self.override is None else _word(self.override),
            "timezone": self.timezone,
            "description": self.description,
            "next_fire_times": [t.isoformat(timespec="microseconds") for t in self.next_fire_times],
            "last_run": None,
        }
        if self.error is not None:  # not served, and why
            data["status"] = "error"
            data["error"] = self.error
        if self.last_run_id is not None:
            data["last_run"] = {
                "id": self.last_run_id,
                "status": self.last_run_status,
                "fired_at": iso(self.last_run_fired_at),
            }
        if self.watch is not None:
            data["watch"] = self.watch
        data["definition"] = self.definition
        return data


def _word(enabled: bool) -> str:
    return "enabled" if enabled else "disabled"


def daemon_fields(summary: ScheduleSummary) -> dict[str, Any]:
    """What the ``schedules`` table shows beyond the ``--json`` object: the expression as
    written, the last fire and its outcome, and whether the schedule has ended."""
    return {
        "expression": summary.expression,
        "last_fire_time": iso(summary.last_fire_time),
        "last_outcome": None if summary.last_outcome is None else str(summary.last_outcome),
        "ended": summary.ended,
    }


def summary_from_json(data: dict[str, Any]) -> ScheduleSummary:
    """The summary a daemon described (its ``schedules --json`` object and ``daemon_fields``)."""
    override = data.get("override")
    last_run = data.get("last_run") or {}
    return ScheduleSummary(
        id=data.get("id"),
        name=data["name"],
        pipeline=data["pipeline"],
        kind=data["kind"],
        source=data["source"],
        enabled=data["enabled"],
        override=None if override is None else override == "enabled",
        timezone=data["timezone"],
        description=data["description"],
        expression=data.get("expression", "-"),
        next_fire_times=[datetime.fromisoformat(t) for t in data["next_fire_times"]],
        ended=bool(data.get("ended")),
        last_fire_time=_time(data.get("last_fire_time")),
        last_outcome=data.get("last_outcome"),
        last_run_id=last_run.get("id"),
        last_run_status=last_run.get("status"),
        last_run_fired_at=_time(last_run.get("fired_at")),
        watch=data.get("watch"),
        definition=data.get("definition", {}),
        error=data.get("error"),
    )


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)
