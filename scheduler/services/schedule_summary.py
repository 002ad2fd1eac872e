"""One schedule as ``pipesched schedules`` and ``GET /api/v1/schedules`` show it: a pure function
of its definition, what the store keeps of it, its last run's status and ``now`` — so the CLI and
the REST API render the same object, and tests hand it a fixed ``now``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from scheduler.core.clock import iso
from scheduler.core.errors import NotFound
from scheduler.definitions import discover_pipelines, load_schedules, published_names
from scheduler.services.api_schedules import load_api_schedules
from scheduler.services.publish import list_versions
from scheduler.triggers.describe import describe, expression
from scheduler.triggers.time import time_trigger

if TYPE_CHECKING:
    from scheduler.definitions.config import Config
    from scheduler.definitions.schedules import ScheduleDef
    from scheduler.store import Store
    from scheduler.store.records import RunRecord, ScheduleState

NEXT_COUNT = 5
_RUN_OUTCOMES = frozenset({"claimed", "started", "queued"})


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

    @property
    def next_fire_time(self) -> datetime | None:
        return self.next_fire_times[0] if self.next_fire_times else None

    def to_json(self) -> dict[str, Any]:
        """The ``schedules --json`` object. ``override`` is ``"enabled"``, ``"disabled"``
        or null; ``next_fire_times`` keep the schedule's own offset."""
        data: dict[str, Any] = {
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


def summarize(
    schedule: ScheduleDef,
    state: ScheduleState | None,
    last_run: RunRecord | None,
    now: datetime,
    *,
    count: int = NEXT_COUNT,
    source: str | None = None,
) -> ScheduleSummary:
    """The summary of one schedule at ``now``. A schedule never registered counts its interval
    or recurrence from ``now``, as it would if the daemon registered it now."""
    override = state.override if state is not None else None
    enabled = override if override is not None else schedule.enabled
    registered = state.registered_at if state is not None and state.registered_at else now
    next_times: list[datetime] = []
    ended = False
    if schedule.on_change is None:
        trigger = time_trigger(schedule, registered)
        if enabled:
            next_times = trigger.next_times(now, count)
        ended = trigger.next_after(now) is None
    summary = ScheduleSummary(
        name=schedule.name,
        pipeline=schedule.pipeline,
        kind=schedule.kind,
        source=source or (state.source if state is not None else "file"),
        enabled=enabled,
        override=override,
        timezone=schedule.timezone,
        description=describe(schedule, registered, with_zone=False),
        expression=expression(schedule),
        next_fire_times=next_times,
        ended=ended,
        definition=schedule.model_dump(mode="json", exclude_defaults=True),
    )
    if state is not None:
        summary.last_fire_time = state.last_fire_time
        summary.last_outcome = state.last_outcome
        summary.last_run_id = state.last_run_id
    if last_run is not None:
        summary.last_run_status = last_run.status
        summary.last_run_fired_at = last_run.created_at
        if state is not None and state.last_outcome in _RUN_OUTCOMES and state.last_fire_time:
            summary.last_run_fired_at = state.last_fire_time  # the fire that started it
    if schedule.on_change is not None:
        watch = schedule.on_change
        summary.watch = {
            "datastore": watch.datastore,
            "path": watch.path,
            "pending": 0,
            "unhandled": 0,
            "last_file": None,
        }
    return summary


def collect(
    config: Config, store: Store, now: datetime, *, warn: Callable[[str], None] = lambda text: None
) -> list[ScheduleSummary]:
    """The schedules of ``schedules.yaml`` and those created through the API (``source:
    api``), summarized at ``now`` and sorted by next fire (those that never fire again last, by
    name). An API schedule a daemon would leave out (its pipeline gone, its name now taken by
    the file) is left out here too, with a ``warn``."""
    names = set(discover_pipelines(config)) | published_names(config)
    names |= {v.pipeline for v in list_versions(store)}
    definitions = [(s, "file") for s in load_schedules(config.schedules_file, config, names)]
    api, problems = load_api_schedules(config, store)
    for problem in problems:
        warn(f"{problem.message} ({problem.hint})" if problem.hint else problem.message)
    definitions += [(schedule, "api") for schedule, _ in api]
    states = store.schedule_states()
    queued = store.list_runs(statuses=["queued"], limit=0)
    summaries = [
        _summary(store, schedule, states.get(schedule.name), queued, now, source)
        for schedule, source in definitions
    ]
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(
        summaries,
        key=lambda s: (s.next_fire_time.astimezone(UTC) if s.next_fire_time else far, s.name),
    )


def collect_one(config: Config, store: Store, name: str, now: datetime) -> ScheduleSummary:
    """One schedule by name, as ``collect`` shows it; NotFound when no daemon would serve it."""
    for summary in collect(config, store, now):
        if summary.name == name:
            return summary
    raise NotFound(f"no schedule named '{name}'")


def _summary(
    store: Store,
    schedule: ScheduleDef,
    state: ScheduleState | None,
    queued: list[RunRecord],
    now: datetime,
    source: str,
) -> ScheduleSummary:
    last_run = None
    if state is not None and state.last_run_id:
        try:
            last_run = store.get_run(state.last_run_id)
        except NotFound:
            last_run = None
    summary = summarize(schedule, state, last_run, now, source=source)
    if summary.watch is not None:  # file drops: the ledger knows what waits
        waiting = sum(1 for r in queued if r.schedule == schedule.name)
        summary.watch["pending"] = len(store.claimed_files(schedule.name)) + waiting
        summary.watch["last_file"] = store.last_file(schedule.name)
        summary.watch["unhandled"] = store.count_file_fires(schedule.name, outcome="skipped")
    return summary
