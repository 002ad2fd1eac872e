"""The set of definitions a daemon serves: config, the pipelines its schedules name, and the
time schedules themselves. Built whole, then swapped in whole, so a reload is atomic.

At start-up a bad pipeline or schedule is reported (file:line:col) and left out while the good
ones serve; on SIGHUP any error keeps the old set serving (the daemon decides, with ``strict``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scheduler.config import Config, load_config
from scheduler.definitions import (
    DefinitionError,
    DefinitionErrors,
    ScheduleDef,
    discover_pipelines,
    load_pipeline,
    load_valid_schedules,
    published_names,
)
from scheduler.errors import PipeschedError


@dataclass
class ScheduleSet:
    config: Config
    schedules: dict[str, ScheduleDef] = field(default_factory=dict)
    pipelines: dict[str, Any] = field(default_factory=dict)
    errors: list[DefinitionError] = field(default_factory=list)

    def fingerprint(self, name: str) -> str:
        """What must stay equal for a schedule to keep its next fire time across a reload."""
        schedule = self.schedules[name]
        return json.dumps(schedule.model_dump(mode="json"), sort_keys=True, default=str)

    def time_schedules(self) -> dict[str, ScheduleDef]:
        return {n: s for n, s in self.schedules.items() if s.on_change is None}

    def pipeline_for(self, schedule: ScheduleDef) -> Any:
        """The working copy for ``pipeline: NAME``, the snapshot for ``NAME@VERSION``."""
        return self.pipelines[schedule.pipeline]

    @staticmethod
    def version_for(schedule: ScheduleDef) -> str | None:
        """The label a run of this schedule records (RunRequest.version): None = working copy."""
        return schedule.pipeline_version


def load_schedule_set(config_path: Path, *, strict: bool) -> ScheduleSet:
    """Load everything; with ``strict`` any error raises DefinitionErrors (nothing changes)."""
    config = load_config(config_path)
    known = discover_pipelines(config)
    names = set(known) | published_names(config)  # NAME@VERSION outlives its working copy
    schedules, errors = load_valid_schedules(config.schedules_file, config, names)
    result = ScheduleSet(config=config, errors=list(errors))
    for schedule in schedules:
        ref = schedule.pipeline
        if ref not in result.pipelines:
            result.pipelines[ref] = _load(config, known, schedule, result.errors)
        if result.pipelines[ref] is not None:
            result.schedules[schedule.name] = schedule
    if strict and result.errors:
        raise DefinitionErrors(result.errors)
    return result


def _load(
    config: Config, known: dict[str, Path], schedule: ScheduleDef, errors: list[DefinitionError]
) -> Any:
    """The pipeline a schedule runs, or None with its errors added. A published version is read
    from its snapshot folder: the daemon loads schedules before it opens the store."""
    from scheduler.publish import load_published_from_disk

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
