"""pipeline.yaml, schedules.yaml and the daemon config turned into validated models, with every
mistake reported as ``file:line:col: error: ...``. Loaders return values; nothing registers itself
on import. Pure: nothing here opens the store or starts a process (what is kept in the store, such
as the schedules created through the API, is handed in by the caller)."""

from __future__ import annotations

import importlib
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scheduler.core.errors import DefinitionError, DefinitionErrors, ParameterError

if TYPE_CHECKING:
    from scheduler.definitions.config import Config
    from scheduler.definitions.discovery import (
        discover_pipelines,
        find_pipeline,
    )
    from scheduler.definitions.pipeline import PIPELINE_FILE, DataDef, ParameterDef, Pipeline
    from scheduler.definitions.pipeline_loader import build_pipeline, load_pipeline
    from scheduler.definitions.schedule_loader import (
        ScheduleCheck,
        build_schedule,
        load_schedules,
        load_valid_schedules,
    )
    from scheduler.definitions.schedules import OnChange, Recurrence, ScheduleDef
    from scheduler.definitions.steps import (
        STEP_TYPES,
        CommandStep,
        DataTransferStep,
        Environment,
        NotebookStep,
        ParallelRunStep,
        PythonScriptStep,
        SqlStep,
        Step,
        StepBase,
    )
    from scheduler.definitions.yamlsource import PathKey, YamlDocument, display_path

# The names this package offers, loaded on first use: a command that needs only the config's
# paths (``definitions.config``) never loads pydantic or the pipeline models.
_HOMES = {
    "Config": "config",
    "discover_pipelines": "discovery",
    "find_pipeline": "discovery",
    "pipeline_files": "discovery",
    "convert_parameter": "parameters",
    "PIPELINE_FILE": "pipeline",
    "DataDef": "pipeline",
    "ParameterDef": "pipeline",
    "Pipeline": "pipeline",
    "build_pipeline": "pipeline_loader",
    "load_pipeline": "pipeline_loader",
    "ScheduleCheck": "schedule_loader",
    "build_schedule": "schedule_loader",
    "load_schedules": "schedule_loader",
    "load_valid_schedules": "schedule_loader",
    "OnChange": "schedules",
    "Recurrence": "schedules",
    "ScheduleDef": "schedules",
    "STEP_TYPES": "steps",
    "CommandStep": "steps",
    "DataTransferStep": "steps",
    "Environment": "steps",
    "NotebookStep": "steps",
    "ParallelRunStep": "steps",
    "PythonScriptStep": "steps",
    "SqlStep": "steps",
    "Step": "steps",
    "StepBase": "steps",
    "PathKey": "yamlsource",
    "YamlDocument": "yamlsource",
    "display_path": "yamlsource",
    "read_yaml": "yamlsource",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


__all__ = [
    "PIPELINE_FILE",
    "STEP_TYPES",
    "CommandStep",
    "DataDef",
    "DataTransferStep",
    "Environment",
    "NotebookStep",
    "OnChange",
    "ParallelRunStep",
    "ParameterDef",
    "Pipeline",
    "PythonScriptStep",
    "Recurrence",
    "ScheduleCheck",
    "ScheduleDef",
    "SqlStep",
    "Step",
    "StepBase",
    "YamlDocument",
    "build_pipeline",
    "build_schedule",
    "discover_pipelines",
    "display_path",
    "find_pipeline",
    "load_pipeline",
    "load_schedules",
    "load_valid_schedules",
    "published_names",
    "schedule_parameter_errors",
    "validate_all",
]


def published_names(config: Config) -> set[str]:
    """Pipelines with published snapshots: ``NAME@VERSION`` outlives its working copy."""
    try:
        return {p.name for p in (config.state_dir / "published").iterdir() if p.is_dir()}
    except OSError:
        return set()


def validate_all(
    config: Config,
    api_schedule_names: Collection[str] = (),
    *,
    check: ScheduleCheck | None = None,
) -> list[DefinitionError]:
    """Every error in every pipeline under pipelines_dir and in the schedules file (whose
    parameters are also checked against the pipelines they run). ``api_schedule_names`` are the
    schedules created through the API, read from the store by the caller: one of the file that
    shares a name with them is reported. ``check`` is the fire-time computation a caller above
    this package hands in (``scheduler.services.schedules.validate_definitions`` does)."""
    # lazy: the package's names load on first use (see _HOMES)
    from scheduler.definitions.discovery import discover_pipelines, pipeline_files
    from scheduler.definitions.pipeline_loader import load_pipeline
    from scheduler.definitions.schedule_loader import load_schedules
    from scheduler.definitions.yamlsource import display_path

    errors: list[DefinitionError] = []
    if not config.pipelines_dir.is_dir():
        errors.append(
            DefinitionError(
                f"pipelines_dir {config.pipelines_dir} does not exist",
                file=display_path(config.file),
            )
        )
    pipelines: dict[str, Pipeline] = {}
    names: dict[str, Path] = {}
    for file in pipeline_files(config.pipelines_dir):
        try:
            pipeline = load_pipeline(file, config)
        except DefinitionErrors as exc:
            errors.extend(exc.errors)
            continue
        if pipeline.name in names:
            errors.append(
                DefinitionError(
                    f"pipeline name '{pipeline.name}' is also used by "
                    f"{display_path(names[pipeline.name])}",
                    file=display_path(file),
                    hint="pipeline names are unique",
                )
            )
            continue
        names[pipeline.name] = file
        pipelines[pipeline.name] = pipeline
    known = set(discover_pipelines(config)) | set(pipelines) | published_names(config)
    if not config.schedules_file.is_file():
        errors.append(
            DefinitionError(
                f"schedules file {config.schedules_file} does not exist",
                file=display_path(config.file),
                hint="create it with  schedules: []",
            )
        )
        return errors
    try:
        schedules = load_schedules(config.schedules_file, config, known, check=check)
    except DefinitionErrors as exc:
        errors.extend(exc.errors)
        return errors
    errors.extend(_check_schedule_parameters(config, schedules, pipelines, api_schedule_names))
    return errors


def _check_schedule_parameters(
    config: Config,
    schedules: list[ScheduleDef],
    pipelines: dict[str, Pipeline],
    api_schedule_names: Collection[str],
) -> list[DefinitionError]:
    """A schedule's parameters must fit the working copy of the pipeline it runs; and a
    schedule created through the API must not share a name with one of the file."""
    # lazy: the package's names load on first use (see _HOMES)
    from scheduler.definitions.yamlsource import display_path, read_yaml

    doc = read_yaml(config.schedules_file)
    index = schedule_positions(doc)
    errors: list[DefinitionError] = []
    for schedule in schedules:
        pipeline = pipelines.get(schedule.pipeline)  # NAME@VERSION: checked when published
        if pipeline is not None:
            base = ("schedules", index.get(schedule.name, 0))
            errors.extend(schedule_parameter_errors(config, schedule, pipeline, doc, base))
    for name in sorted(set(api_schedule_names) & set(index)):
        errors.append(
            doc.error(
                ("schedules", index[name], "name"),
                f"schedule '{name}' was also created through the API: this one in "
                f"{display_path(config.schedules_file)} wins and the API one is left out",
                hint=f"rename one, or delete the API one (DELETE /api/v1/schedules/{name})",
            )
        )
    return errors


def schedule_positions(doc: YamlDocument) -> dict[str, int]:
    """Each named schedule's index in the ``schedules:`` list of ``doc``, to point an error at
    its lines."""
    entries = doc.get(("schedules",)) or []
    return {
        raw["name"]: i
        for i, raw in enumerate(entries if isinstance(entries, list) else [])
        if isinstance(raw, dict) and isinstance(raw.get("name"), str)
    }


def schedule_parameter_errors(
    config: Config, schedule: ScheduleDef, pipeline: Pipeline, doc: YamlDocument, base: PathKey
) -> list[DefinitionError]:
    """Whether ``schedule`` (found at ``base`` in ``doc``) fits ``pipeline``: known parameters
    of the right type, every required one given, and an on_change ``data_path_parameter`` that
    is a path parameter. Shared by schedules.yaml and schedules created through the API."""
    # lazy: the package's names load on first use (see _HOMES)
    from scheduler.definitions.parameters import convert_parameter

    where = f"schedule '{schedule.name}'"
    errors: list[DefinitionError] = []
    for name, value in schedule.parameters.items():
        param = pipeline.parameters.get(name)
        if param is None:
            errors.append(
                doc.error(
                    (*base, "parameters", name),
                    f"unknown parameter '{name}' of pipeline '{pipeline.name}' in {where}",
                    hint=f"declared: {', '.join(sorted(pipeline.parameters)) or 'none'}",
                    key=True,
                )
            )
            continue
        try:
            convert_parameter(name, param, value, config.datastores)
        except ParameterError as exc:
            errors.append(
                doc.error((*base, "parameters", name), f"{exc.message} in {where}", hint=exc.hint)
            )
    given = set(schedule.parameters)
    watch = schedule.on_change
    if watch is not None and watch.data_path_parameter:
        param = pipeline.parameters.get(watch.data_path_parameter)
        if param is None or param.type != "path":
            errors.append(
                doc.error(
                    (*base, "on_change", "data_path_parameter"),
                    f"pipeline '{pipeline.name}' has no path parameter "
                    f"'{watch.data_path_parameter}' for {where}",
                    hint="declare it with  type: path",
                )
            )
        given.add(watch.data_path_parameter)
    for name, param in pipeline.parameters.items():
        if param.required and name not in given:
            errors.append(
                doc.error(
                    (*base, "pipeline"),
                    f"{where} does not give required parameter '{name}' of "
                    f"pipeline '{pipeline.name}'",
                    hint=f"add it under parameters: {{{name}: ...}}",
                )
            )
    return errors
