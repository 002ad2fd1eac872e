"""Schedules as a user sees and changes them on the store: every schedule summarized (those of
schedules.yaml and those created through the API), one by name, the names a daemon of the config
would know, an enable/disable override written for the next daemon start, API schedules created
and deleted, and the fire records of a schedule.

A running daemon is asked instead by ``scheduler.services.client.ServiceClient``; the daemon's own
control paths call these functions for the store's part.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from typing import TYPE_CHECKING, Any

from scheduler.core.clock import SYSTEM_CLOCK
from scheduler.core.errors import (
    DefinitionError,
    DefinitionErrors,
    NotFound,
    PipeschedError,
    names_hint,
)
from scheduler.definitions import (
    discover_pipelines,
    load_schedules,
    published_names,
    schedule_parameter_errors,
    schedule_positions,
    validate_all,
)
from scheduler.definitions.yamlsource import read_yaml
from scheduler.services import fire_history
from scheduler.services.api_schedules import (
    create_api_schedule,
    delete_api_schedule,
    file_schedule_names,
    update_api_schedule,
)
from scheduler.services.publish import load_published_from_disk
from scheduler.services.schedule_summary import ScheduleSummary, collect, collect_one, summarize
from scheduler.triggers.time import fire_time_check

if TYPE_CHECKING:
    from scheduler.definitions import ScheduleDef
    from scheduler.definitions.config import Config
    from scheduler.store import Store
    from scheduler.store.reads import HistoryReads
    from scheduler.store.records import FireRecord

__all__ = [
    "UnknownSchedule",
    "create_schedule",
    "delete_schedule",
    "get_schedule",
    "list_fires",
    "list_schedules",
    "schedule_names",
    "set_override",
    "summarize_created",
    "validate_definitions",
]


class UnknownSchedule(NotFound):
    """No schedule of that name; ``known`` holds the names there are (the hint lists them, and
    the close one when the name looks like a typo)."""

    def __init__(self, name: str, known: set[str]) -> None:
        hint = names_hint(name, known, none="there are no schedules")
        super().__init__(f"no schedule {name!r}", hint=hint)
        self.name = name
        self.known = known


def validate_definitions(
    config: Config, api_schedule_names: Collection[str] = (), now: datetime | None = None
) -> list[DefinitionError]:
    """Every error ``pipesched validate`` reports, and a reload refuses: the definitions
    (``validate_all``) with each time schedule's fire times computed by the daemon's own
    trigger code, so a schedule that validates is one the daemon can serve."""
    check = fire_time_check(now or SYSTEM_CLOCK.now())
    errors = validate_all(config, api_schedule_names, check=check)
    return errors + published_version_errors(config, check)


def published_version_errors(config: Config, check: Any = None) -> list[DefinitionError]:
    """A schedule naming ``NAME@VERSION`` needs that version published, and its parameters must
    fit that version: the daemon loads it from its snapshot folder, so ``validate`` does too
    (no store needed), and names the schedule's line."""
    known = set(discover_pipelines(config)) | published_names(config)
    try:
        schedules = load_schedules(config.schedules_file, config, known, check=check)
    except (DefinitionErrors, OSError):
        return []  # validate_all reported them
    doc = read_yaml(config.schedules_file)
    index = schedule_positions(doc)
    errors: list[DefinitionError] = []
    for schedule in schedules:
        version = schedule.pipeline_version
        if version is None:
            continue
        base = ("schedules", index.get(schedule.name, 0))
        try:
            pipeline = load_published_from_disk(config, schedule.pipeline_name, version)
        except PipeschedError as exc:
            errors.append(
                doc.error((*base, "pipeline"), f"schedule '{schedule.name}': {exc}", hint=exc.hint)
            )
            continue
        errors.extend(schedule_parameter_errors(config, schedule, pipeline, doc, base))
    return errors


def list_schedules(
    config: Config,
    store: Store,
    now: datetime | None = None,
    *,
    warn: Callable[[str], None] = lambda text: None,
) -> list[ScheduleSummary]:
    """Every schedule summarized at ``now``, sorted by next fire; an API schedule a daemon would
    leave out is left out here too, with a ``warn``."""
    return collect(config, store, now or SYSTEM_CLOCK.now(), warn=warn)


def get_schedule(
    config: Config, store: Store, name: str, now: datetime | None = None
) -> ScheduleSummary:
    """One schedule as ``list_schedules`` shows it; NotFound when no daemon would serve it."""
    return collect_one(config, store, name, now or SYSTEM_CLOCK.now())


def schedule_names(config: Config, store: HistoryReads) -> set[str]:
    """Every schedule a daemon of this config would know: those in the schedules file (read
    leniently when the file has errors, so a broken schedule can still be disabled) and those
    kept in the store (created through the API)."""
    names = {state.name for state in store.schedule_states().values() if state.source == "api"}
    try:
        found = load_schedules(config.schedules_file, config, set(discover_pipelines(config)))
        names.update(schedule.name for schedule in found)
    except DefinitionErrors:
        names.update(file_schedule_names(config))
    return names


def set_override(config: Config, store: Store, name: str, enabled: bool) -> None:
    """Enable or disable ``name`` until the opposite command, for the next daemon start;
    UnknownSchedule for a name no daemon of this config would know."""
    known = schedule_names(config, store)
    if name not in known:
        raise UnknownSchedule(name, known)
    store.set_override(name, enabled)


def create_schedule(
    config: Config, store: Store, definition: dict[str, Any], now: datetime | None = None
) -> ScheduleSummary:
    """Check and keep an API schedule; its summary is made from the definition alone (as the
    daemon does), so a schedules.yaml that cannot be read now never turns a created schedule
    into an error. A running daemon serves it only once told."""
    created = create_api_schedule(config, store, definition)
    return summarize_created(store, created, now or SYSTEM_CLOCK.now())


def summarize_created(store: Store, schedule: ScheduleDef, now: datetime) -> ScheduleSummary:
    """A schedule just created through the API, summarized from its definition and state."""
    state = store.schedule_states().get(schedule.name)
    return summarize(schedule, state, None, now, source="api")


def update_schedule(
    config: Config,
    store: Store,
    name: str,
    definition: dict[str, Any],
    now: datetime | None = None,
) -> ScheduleSummary:
    """Replace an API schedule's definition (a rename too), keeping its id; its summary. A
    running daemon serves the change only once told."""
    updated = update_api_schedule(config, store, name, definition)
    return summarize_created(store, updated, now or SYSTEM_CLOCK.now())


def delete_schedule(config: Config, store: Store, name: str) -> None:
    """Forget an API schedule (its fire records stay); one of schedules.yaml is refused."""
    delete_api_schedule(config, store, name)


def list_fires(
    store: Store, schedule: str | None = None, *, limit: int = 20, config: Config | None = None
) -> list[FireRecord]:
    """Fire records, newest first (see ``fire_history.list_fires``)."""
    return fire_history.list_fires(store, schedule, limit=limit, config=config)
