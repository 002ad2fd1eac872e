"""What the fire paths read of the definitions the daemon serves now: its schedules by name and
the pipeline each one runs. The daemon hands its current set down (and the new one on reload);
nothing here reaches back up for it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from scheduler.definitions.pipeline import Pipeline
from scheduler.definitions.schedules import ScheduleDef


class PipelineSource(Protocol):
    def pipeline_for(self, schedule: ScheduleDef) -> Pipeline:
        """The pipeline ``schedule`` runs; raises PipeschedError when it cannot be had."""
        ...


class ServedDefinitions(PipelineSource, Protocol):
    @property
    def schedules(self) -> Mapping[str, ScheduleDef]: ...
