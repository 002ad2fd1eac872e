"""The validated pipeline (``pipelines/<name>/pipeline.yaml``): its parameters, data and steps.

A ``Pipeline`` is only ever built by ``pipeline_loader``, so holding one means every check passed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from scheduler.definitions.config_schema import NotifyEntry
from scheduler.definitions.steps import Model, Step

PIPELINE_FILE = "pipeline.yaml"
ParameterType = Literal["str", "int", "float", "bool", "path"]
_INFERRED = {bool: "bool", int: "int", float: "float", str: "str"}


class ParameterDef(Model):
    """A PipelineParameter: typed, with a default unless required."""

    type: ParameterType = "str"
    default: str | int | float | bool | None = None
    description: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _infer_type(cls, data: Any) -> Any:
        if isinstance(data, dict) and "type" not in data and data.get("default") is not None:
            return {**data, "type": _INFERRED.get(type(data["default"]), "str")}
        return data

    @property
    def required(self) -> bool:
        return self.default is None


class DataDef(Model):
    """A PipelineData: an intermediate output kept in a datastore."""

    datastore: str = "default"
    description: str | None = None


class Pipeline(Model):
    """A validated pipeline definition."""

    name: str
    description: str | None = None
    experiment: str = ""
    continue_on_step_failure: bool = False
    parameters: dict[str, ParameterDef] = Field(default_factory=dict)
    data: dict[str, DataDef] = Field(default_factory=dict)
    steps: dict[str, Step]
    notify: list[NotifyEntry] = Field(default_factory=list, max_length=100)
    file: Path
    directory: Path

    @model_validator(mode="before")
    @classmethod
    def _experiment_defaults_to_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("experiment") and "name" in data:
            return {**data, "experiment": data["name"]}
        return data

    def step(self, step_id: str) -> Step:
        return self.steps[step_id]

    def definition_dict(self) -> dict[str, Any]:
        """A JSON-able canonical dump (for content hashes and storing): every default filled in,
        paths relative to the pipeline folder so a moved checkout hashes the same."""
        dumped = self.model_dump(mode="json", exclude={"file", "directory"})
        for step_id, step in self.steps.items():
            rel = os.path.relpath(step.source_directory, self.directory)
            dumped["steps"][step_id]["source_directory"] = Path(rel).as_posix()
            if step.warm:  # the default: absent, so definitions from before it hash the same
                dumped["steps"][step_id].pop("warm", None)
        if not self.notify:  # absent, so definitions from before it hash the same
            dumped.pop("notify", None)
        return dumped
