"""The values a run's steps see: parameters as argv strings, data paths as producers finish,
``run.*``, the inputs a step's ``run.input_datasets`` lists, and each step's reuse fingerprint."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from scheduler.core.errors import PipeschedError
from scheduler.definitions.config import Config
from scheduler.definitions.fingerprint import path_manifest, source_tree_hash, step_fingerprint
from scheduler.definitions.parameters import argv_value, resolve_datastore_path
from scheduler.definitions.pipeline import Pipeline
from scheduler.definitions.steps import StepBase
from scheduler.executor.workdir import (
    interpreter_prefix,
    is_own_interpreter,
    reset_output_dir,
    resolve_interpreter,
)
from scheduler.store.records import RunRecord

_DATASTORE_URI = re.compile(r"datastore://[^\s\"'$]+")

Manifest = list[tuple[str, int, int]] | str
"""What ``path_manifest`` reads of a path: its files' (path, size, mtime_ns), or ``"missing"``."""


class StepValues:
    """Per-run state shared by the steps of one run (owned by its RunExecutor)."""

    def __init__(self, config: Config, pipeline: Pipeline, run: RunRecord) -> None:
        self.config, self.pipeline, self.run = config, pipeline, run
        self.argv_params = {
            name: argv_value(definition, run.parameters.get(name), config.datastores)
            for name, definition in pipeline.parameters.items()
        }
        self.data_paths: dict[str, str] = {}
        self.fingerprints: dict[str, str] = {}
        self._source_hashes: dict[Path, str] = {}
        # Relative paths, so a moved checkout keeps its reuse history.
        self._definitions = pipeline.definition_dict()["steps"]

    def namespaces(self) -> dict[str, dict[str, str]]:
        return {
            "parameters": self.argv_params,
            "data": dict(self.data_paths),
            "run": {
                "id": self.run.id,
                "experiment": self.run.experiment,
                **self.run.stands_for.template_values(),
            },
        }

    def output_path(self, step_id: str, data_name: str) -> Path:
        """``<datastore>/.pipesched/outputs/<run>/<step>/<data>/``."""
        datastore = self.config.datastores[self.pipeline.data[data_name].datastore]
        return datastore.path / ".pipesched" / "outputs" / self.run.id / step_id / data_name

    def prepare_outputs(self, step: StepBase) -> dict[str, str]:
        """Empty folders for the data this step produces; their paths become ``${{data.X}}``."""
        outputs = {}
        for name in step.produces():
            path = self.output_path(step.id, name)
            reset_output_dir(path)
            outputs[name] = str(path)
        self.data_paths.update(outputs)
        return outputs

    def set_outputs(self, step_id: str, outputs: dict[str, str]) -> None:
        self.data_paths.update(outputs)

    def input_datasets(self, step: StepBase) -> dict[str, str]:
        """Name → absolute path of the path parameters and data this step reads."""
        named = {
            name: self.argv_params[name]
            for name in sorted(step.parameter_refs())
            if self.pipeline.parameters[name].type == "path"
        }
        named.update(
            {
                name: self.data_paths[name]
                for name in sorted(step.consumes())
                if name in self.data_paths
            }
        )
        return named

    def source_hash(self, directory: Path) -> str:
        if directory not in self._source_hashes:
            self._source_hashes[directory] = source_tree_hash(directory)
        return self._source_hashes[directory]

    def _literal_path_manifests(self, step: StepBase) -> dict[str, Manifest]:
        """Files under every ``datastore://`` path written literally in a step's fields (a
        data_transfer ``source``, say): new data there must never be hidden by a reuse."""
        found: dict[str, Manifest] = {}
        for _, text in step.string_fields():
            for literal in _DATASTORE_URI.findall(text):
                try:
                    _, real = resolve_datastore_path(literal, self.config.datastores)
                except PipeschedError:
                    continue  # validation reports it; the step fails with the reason
                found[literal] = path_manifest(real)
        return found

    def fingerprint(self, step_id: str, upstream: Iterable[str]) -> str:
        step = self.pipeline.steps[step_id]
        refs = step.parameter_refs()
        manifests = {
            name: path_manifest(Path(self.argv_params[name]))
            for name in refs
            if self.pipeline.parameters[name].type == "path"
        }
        manifests.update(self._literal_path_manifests(step))
        interpreter = resolve_interpreter(step.environment.python, self.pipeline.directory)
        if interpreter is None:
            interpreter_id = "missing"
        else:
            interpreter_id = f"{interpreter_prefix(interpreter)} {os.path.realpath(interpreter)}"
            if is_own_interpreter(interpreter):
                interpreter_id += f" {sys.version}"
        fingerprint = step_fingerprint(
            definition=self._definitions[step_id],
            argv_parameters=self.argv_params,
            referenced_parameters={name: self.run.parameters.get(name) for name in refs},
            source_hash=self.source_hash(step.source_directory),
            interpreter=interpreter_id,
            upstream={up: self.fingerprints.get(up, "") for up in upstream},
            manifests=manifests,
            run_times=self.run.stands_for.template_values(),
        )
        self.fingerprints[step_id] = fingerprint
        return fingerprint
