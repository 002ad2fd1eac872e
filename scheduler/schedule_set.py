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
        return self.pipelines[schedule.pipeline_name]


def load_schedule_set(config_path: Path, *, strict: bool) -> ScheduleSet:
    """Load everything; with ``strict`` any error raises DefinitionErrors (nothing changes)."""
    config = load_config(config_path)
    known = discover_pipelines(config)
    schedules, errors = load_valid_schedules(config.schedules_file, config, set(known))
    result = ScheduleSet(config=config, errors=list(errors))
    for schedule in schedules:
        name = schedule.pipeline_name
        if name not in result.pipelines:
            try:
                result.pipelines[name] = load_pipeline(known[name], config)
            except DefinitionErrors as exc:
                result.errors.extend(exc.errors)
                result.pipelines[name] = None
            except PipeschedError as exc:
                result.errors.append(DefinitionError(str(exc), file=known.get(name)))
                result.pipelines[name] = None
        if result.pipelines[name] is not None:
            result.schedules[schedule.name] = schedule
    if strict and result.errors:
        raise DefinitionErrors(result.errors)
    return result
