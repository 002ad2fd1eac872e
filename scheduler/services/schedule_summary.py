"""One schedule as ``pipesched schedules`` and ``GET /api/v1/schedules`` show it: a pure function
of its definition, what the store keeps of it, its last run's status and ``now`` — so the CLI and
the REST API render the same object, and tests hand it a fixed ``now``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from scheduler.core.errors import DefinitionError, DefinitionErrors, NotFound
from scheduler.services.schedule_view import ScheduleSummary
from scheduler.triggers.describe import describe, expression
from scheduler.triggers.time import fire_time_check, time_trigger

if TYPE_CHECKING:
    from scheduler.definitions.config import Config
    from scheduler.definitions.schedules import ScheduleDef
    from scheduler.store import Store
    from scheduler.store.records import FileKey, RunRecord, ScheduleState

NEXT_COUNT = 5
_RUN_OUTCOMES = frozenset({"claimed", "started", "queued"})
# ``api_schedules.KEPT_BESIDE_DEFINITION``, without loading the API schedules' checks (a test
# holds them equal): kept with an API schedule beside its definition, and shown with it.
KEPT_BESIDE_DEFINITION = frozenset({"pipeline_endpoint_id"})


class SummaryReads(Protocol):
    """What summarizing reads of the store: the full ``Store`` and ``SqliteReads`` offer it."""

    def schedule_states(self) -> dict[str, ScheduleState]: ...
    def get_run(self, run_id: str) -> RunRecord: ...
    def list_runs(self, *, statuses: Sequence[str] = (), limit: int = 20) -> list[RunRecord]: ...
    def claimed_files(self, schedule: str) -> list[FileKey]: ...
    def last_file(self, schedule: str) -> str | None: ...
    def count_file_fires(self, schedule: str, *, outcome: str | None = None) -> int: ...


@dataclass(frozen=True)
class Served:
    """A schedule a daemon would serve: its definition, where it comes from (``file`` or
    ``api``) and its entry as written (defaults left out)."""

    schedule: ScheduleDef
    source: str
    definition: dict[str, Any]


@dataclass(frozen=True)
class Gathered:
    """Every schedule summarized, the served ones among them, and whether nothing was left
    out or warned about (``clean``)."""

    summaries: list[ScheduleSummary]
    served: list[Served]
    clean: bool


def summarize(
    schedule: ScheduleDef,
    state: ScheduleState | None,
    last_run: RunRecord | None,
    now: datetime,
    *,
    count: int = NEXT_COUNT,
    source: str | None = None,
    definition: dict[str, Any] | None = None,
) -> ScheduleSummary:
    """The summary of one schedule at ``now``. A schedule never registered counts its interval
    or recurrence from ``now``, as it would if the daemon registered it now. ``definition``:
    the schedule's entry as written, when the caller has it already."""
    override = state.override if state is not None else None
    enabled = override if override is not None else schedule.enabled
    registered = state.registered_at if state is not None and state.registered_at else now
    next_times: list[datetime] = []
    ended = False
    error = None
    if schedule.on_change is None:
        try:
            trigger = time_trigger(schedule, registered)
            if enabled:
                next_times = trigger.next_times(now, count)
            ended = trigger.next_after(now) is None
        except (ValueError, OverflowError, ArithmeticError) as exc:
            error = f"fire times cannot be computed: {exc}"
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
        definition=dict(
            definition
            if definition is not None
            else schedule.model_dump(mode="json", exclude_defaults=True)
        ),
        error=error,
    )
    if state is not None:
        summary.id = state.schedule_id
        if state.source == "api" and state.definition:
            summary.definition.update(
                (key, state.definition[key])
                for key in KEPT_BESIDE_DEFINITION
                if key in state.definition
            )
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
    name). A schedule of the file that no daemon would serve (it fails validation, or its fire
    times cannot be computed) is summarized with its ``error``, and each error goes to ``warn``;
    a file of which no schedule can be read raises DefinitionErrors. An API schedule a daemon would leave out (its pipeline gone, its name now taken by
    the file) is left out here too, with a ``warn``."""
    return gather(config, store, now, warn=warn).summaries


def gather(
    config: Config, store: Store, now: datetime, *, warn: Callable[[str], None] = lambda text: None
) -> Gathered:
    """``collect``'s summaries, with the schedules served and whether all went clean."""
    # lazy: the schedule models and their checks load only when definitions are validated
    from scheduler.definitions import discover_pipelines, load_valid_schedules, published_names
    from scheduler.services.api_schedules import load_api_schedules
    from scheduler.services.publish import list_versions

    names = set(discover_pipelines(config)) | published_names(config)
    names |= {v.pipeline for v in list_versions(store)}
    rejected: dict[str, list[DefinitionError]] = {}
    good, errors = load_valid_schedules(
        config.schedules_file, config, names, check=fire_time_check(now), rejected=rejected
    )
    if errors and not good and not rejected:  # nothing could be read: the file itself
        raise DefinitionErrors(errors)
    for error in errors:
        warn(str(error))
    definitions = [(s, "file") for s in good]
    api_rejected: dict[str, tuple[dict[str, Any], list[DefinitionError]]] = {}
    api, problems = load_api_schedules(config, store, rejected=api_rejected)
    for problem in problems:
        warn(f"{problem.message} ({problem.hint})" if problem.hint else problem.message)
    definitions += [(schedule, "api") for schedule, _ in api]
    served = [
        Served(schedule, source, schedule.model_dump(mode="json", exclude_defaults=True))
        for schedule, source in definitions
    ]
    summaries = summarize_served(store, served, now, sort=False)
    states = store.schedule_states()
    states_raw = _raw_entries(config)
    for name, errs in rejected.items():
        summaries.append(_broken(name, states_raw.get(name, {}), states.get(name), errs, "file"))
    for name, (raw, errs) in api_rejected.items():
        summaries.append(_broken(name, raw, states.get(name), errs, "api"))
    clean = not errors and not problems and not rejected and not api_rejected
    return Gathered(by_next_fire(summaries), served, clean)


def summarize_served(
    store: SummaryReads, served: Sequence[Served], now: datetime, *, sort: bool = True
) -> list[ScheduleSummary]:
    """The served schedules summarized at ``now`` with what the store keeps of them, sorted by
    next fire unless ``sort`` is False."""
    states = store.schedule_states()
    queued = store.list_runs(statuses=["queued"], limit=0)
    summaries = [
        _summary(store, entry, states.get(entry.schedule.name), queued, now) for entry in served
    ]
    return by_next_fire(summaries) if sort else summaries


def by_next_fire(summaries: list[ScheduleSummary]) -> list[ScheduleSummary]:
    """Sorted by next fire; those that never fire again last, by name."""
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(
        summaries,
        key=lambda s: (s.next_fire_time.astimezone(UTC) if s.next_fire_time else far, s.name),
    )


def _raw_entries(config: Config) -> dict[str, dict[str, Any]]:
    """The schedules file's entries by name, as written (read leniently)."""
    # lazy: as gather
    from scheduler.definitions.yamlsource import read_yaml

    entries = read_yaml(config.schedules_file).get(("schedules",)) or []
    if not isinstance(entries, list):
        return {}
    return {e["name"]: e for e in entries if isinstance(e, dict) and isinstance(e.get("name"), str)}


def _broken(
    name: str,
    raw: dict[str, Any],
    state: ScheduleState | None,
    errors: list[DefinitionError],
    source: str,
) -> ScheduleSummary:
    """A schedule (of the file or the API) that no daemon serves, with the reason: its errors."""
    # lazy: as gather
    from scheduler.definitions.schedules import KINDS

    pipeline = raw.get("pipeline")
    timezone = raw.get("timezone")
    kind = next((k for k in KINDS if k in raw), "error")
    return ScheduleSummary(
        name=name,
        pipeline=pipeline if isinstance(pipeline, str) else "",
        kind=kind,
        source=source,
        enabled=False,
        override=state.override if state is not None else None,
        timezone=timezone if isinstance(timezone, str) and _known_zone(timezone) else "UTC",
        description="not served: see error",
        expression="-",
        next_fire_times=[],
        error="; ".join(str(e) for e in errors),
        id=state.schedule_id if state is not None else None,
    )


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def collect_one(config: Config, store: Store, name: str, now: datetime) -> ScheduleSummary:
    """One schedule by name, as ``collect`` shows it; NotFound when no daemon would serve it."""
    for summary in collect(config, store, now):
        if summary.name == name:
            return summary
    raise NotFound(f"no schedule named '{name}'")


def _summary(
    store: SummaryReads,
    entry: Served,
    state: ScheduleState | None,
    queued: list[RunRecord],
    now: datetime,
) -> ScheduleSummary:
    schedule = entry.schedule
    last_run = None
    if state is not None and state.last_run_id:
        try:
            last_run = store.get_run(state.last_run_id)
        except NotFound:
            last_run = None
    summary = summarize(
        schedule, state, last_run, now, source=entry.source, definition=entry.definition
    )
    if summary.watch is not None:  # file drops: the ledger knows what waits
        waiting = sum(1 for r in queued if r.schedule == schedule.name)
        summary.watch["pending"] = len(store.claimed_files(schedule.name)) + waiting
        summary.watch["last_file"] = store.last_file(schedule.name)
        summary.watch["unhandled"] = store.count_file_fires(schedule.name, outcome="skipped")
    return summary
