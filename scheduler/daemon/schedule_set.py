"""The set of definitions a daemon serves: config, the pipelines its schedules name, and the
time schedules themselves. Built whole, then swapped in whole, so a reload is atomic.

At start-up a bad pipeline or schedule (one whose fire times the daemon's trigger cannot compute
included) is reported (file:line:col) and left out while the good ones serve; on SIGHUP whatever
``pipesched validate`` would refuse, even a pipeline no schedule runs, keeps the old set serving
(the daemon decides, with ``strict``).
Schedules created through the API (kept in the store) join the file's once the store is open;
a broken one (its pipeline deleted, say) is reported and left out, and never blocks a reload.

Loading reads files (and, with a store, the API schedules): callers on the event loop hand it to
a thread. A ``ScheduleSet`` is what the fire paths are handed as the definitions served now.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from scheduler.core.clock import SYSTEM_CLOCK
from scheduler.core.errors import PipeschedError
from scheduler.definitions import (
    DefinitionError,
    DefinitionErrors,
    ScheduleDef,
    discover_pipelines,
    load_pipeline,
    load_valid_schedules,
    published_names,
)
from scheduler.definitions.config import Config, load_config
from scheduler.definitions.pipeline import Pipeline
from scheduler.services.api_schedules import load_api_schedules
from scheduler.services.publish import load_published_from_disk
from scheduler.services.schedules import validate_definitions
from scheduler.store import Store
from scheduler.triggers.time import fire_time_check


@dataclass
class ScheduleSet:
    config: Config
    schedules: dict[str, ScheduleDef] = field(default_factory=dict)
    pipelines: dict[str, Pipeline | None] = field(default_factory=dict)  # None: failed to load
    errors: list[DefinitionError] = field(default_factory=list)
    api: set[str] = field(default_factory=set)  # the names of schedules kept in the store
    api_errors: list[DefinitionError] = field(default_factory=list)

    def sources(self) -> dict[str, str]:
        """Schedule name -> ``file`` or ``api``, as the store registers them."""
        return {name: "api" if name in self.api else "file" for name in self.schedules}

    def fingerprint(self, name: str) -> str:
        """What must stay equal for a schedule to keep its next fire time across a reload."""
        schedule = self.schedules[name]
        return json.dumps(schedule.model_dump(mode="json"), sort_keys=True, default=str)

    def time_schedules(self) -> dict[str, ScheduleDef]:
        return {n: s for n, s in self.schedules.items() if s.on_change is None}

    def pipeline_for(self, schedule: ScheduleDef) -> Pipeline:
        """The working copy for ``pipeline: NAME``, the snapshot for ``NAME@VERSION``."""
        pipeline = self.pipelines[schedule.pipeline]
        if pipeline is None:  # never served: a schedule joins only with its pipeline loaded
            raise PipeschedError(f"pipeline '{schedule.pipeline}' could not be loaded")
        return pipeline

    @staticmethod
    def version_for(schedule: ScheduleDef) -> str | None:
        """The label a run of this schedule records (RunRequest.version): None = working copy."""
        return schedule.pipeline_version


def load_schedule_set(
    config_path: Path, *, strict: bool, store: Store | None = None
) -> ScheduleSet:
    """Load everything; with ``strict`` any error in the files raises DefinitionErrors (nothing
    changes). With ``store``, the API schedules join (see ``with_api_schedules``)."""
    config = load_config(config_path)
    if strict:  # all or nothing: whatever ``pipesched validate`` refuses, a reload refuses
        api_names = {state.name for state in store.api_schedules()} if store else set()
        problems = validate_definitions(config, api_names)
        if problems:
            raise DefinitionErrors(problems)
    known = discover_pipelines(config)
    names = set(known) | published_names(config)  # NAME@VERSION outlives its working copy
    check = fire_time_check(SYSTEM_CLOCK.now())  # what the daemon cannot compute stays out
    schedules, errors = load_valid_schedules(config.schedules_file, config, names, check=check)
    result = ScheduleSet(config=config, errors=list(errors))
    for schedule in schedules:
        ref = schedule.pipeline
        if ref not in result.pipelines:
            result.pipelines[ref] = _load(config, known, schedule, result.errors)
        if result.pipelines[ref] is not None:
            result.schedules[schedule.name] = schedule
    if strict and result.errors:
        raise DefinitionErrors(result.errors)
    return result if store is None else with_api_schedules(result, store)


def with_api_schedules(current: ScheduleSet, store: Store) -> ScheduleSet:
    """``current``'s file schedules plus the API schedules the store holds now. Pipelines
    already loaded are reused (only SIGHUP re-reads them); problems go to ``api_errors``."""
    pipelines = dict(current.pipelines)
    good: list[tuple[ScheduleDef, Pipeline]] = []
    errors: list[DefinitionError] = []
    # With none in the store there is nothing to check: spare a second read of schedules.yaml
    # (for the names an API schedule may not take), which costs as much as the first.
    if store.api_schedules():
        good, errors = load_api_schedules(current.config, store, pipelines=pipelines)
    schedules = {n: s for n, s in current.schedules.items() if n not in current.api}
    schedules.update((schedule.name, schedule) for schedule, _ in good)
    return ScheduleSet(
        config=current.config,
        schedules=schedules,
        pipelines=pipelines,
        errors=current.errors,
        api={schedule.name for schedule, _ in good},
        api_errors=errors,
    )


def _load(
    config: Config, known: dict[str, Path], schedule: ScheduleDef, errors: list[DefinitionError]
) -> Pipeline | None:
    """The pipeline a schedule runs, or None with its errors added. A published version is read
    from its snapshot folder: the daemon loads schedules before it opens the store."""
    name, version = schedule.pipeline_name, schedule.pipeline_version
    file = known.get(name)
    try:
        if version is not None:
            return load_published_from_disk(config, name, version)
        if file is None:
            raise PipeschedError(f"pipeline '{name}' has only published versions: name one")
        return load_pipeline(file, config)
    except DefinitionErrors as exc:
        errors.extend(exc.errors)
    except PipeschedError as exc:
        if version is None and file is not None:
            errors.append(DefinitionError(str(exc), file=file))
        else:
            message = f"schedule '{schedule.name}': {exc}"
            errors.append(DefinitionError(message, file=config.schedules_file))
    return None
