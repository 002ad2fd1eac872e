"""Loading a pipeline.yaml into a ``Pipeline``.

Loading is in stages so that one mistake does not hide the others: the top-level fields, then each
parameter, data item and step on its own, then the checks across them (references, data flow,
cycles, files). All errors of the file are raised together as DefinitionErrors.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, TypeVar

from scheduler.core.errors import DefinitionError, DefinitionErrors
from scheduler.definitions.checks import PipelineContext, check_pipeline
from scheduler.definitions.config import Config
from scheduler.definitions.config_schema import NotifyEntry
from scheduler.definitions.pipeline import PIPELINE_FILE, DataDef, ParameterDef, Pipeline
from scheduler.definitions.steps import STEP_TYPES, Model, Step
from scheduler.definitions.validation import did_you_mean, validate
from scheduler.definitions.yamlsource import PathKey, YamlDocument, read_yaml

E = TypeVar("E", ParameterDef, DataDef)


class _Header(Model):
    """The top-level fields; parameters, data and steps are validated entry by entry."""

    name: str | None = None
    description: str | None = None
    experiment: str | None = None
    continue_on_step_failure: bool = False
    parameters: dict[Any, Any] | None = None
    data: dict[Any, Any] | None = None
    steps: dict[Any, Any]
    notify: list[NotifyEntry] | None = None


def load_pipeline(path: Path, config: Config | None) -> Pipeline:
    """Load and validate a pipeline.yaml (or the folder holding one); raise DefinitionErrors with
    every mistake in the file. Without a config, datastore and compute names are not checked."""
    file = pipeline_file(Path(path))
    doc = read_yaml(file)
    return build_pipeline(doc, file, config)


def pipeline_file(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    return path / PIPELINE_FILE if path.is_dir() else path


def build_pipeline(doc: YamlDocument, file: Path, config: Config | None) -> Pipeline:
    """Validate a parsed document (or plain data wrapped by YamlDocument.from_data)."""
    file = Path(os.path.abspath(file))
    directory = file.parent
    errors: list[DefinitionError] = list(doc.errors)
    header = validate(_Header, doc.data, doc, (), describe_pipeline_path, errors)
    raw = doc.data if isinstance(doc.data, dict) else {}
    parameters = _entries(doc, raw, "parameters", ParameterDef, errors)
    data = _entries(doc, raw, "data", DataDef, errors)
    steps = _steps(doc, raw.get("steps"), directory, errors)
    name = header.name if header and header.name is not None else directory.name
    context = PipelineContext(
        doc=doc,
        directory=directory,
        config=config,
        raw_steps=_mapping(raw.get("steps")),
        parameters=parameters,
        data=data,
        steps=steps,
        name=name,
    )
    errors.extend(check_pipeline(context))
    if errors or header is None or steps is None:
        raise DefinitionErrors(errors or [DefinitionError("invalid pipeline", file=doc.file)])
    return Pipeline(
        name=name,
        description=header.description,
        experiment=header.experiment or name,
        continue_on_step_failure=header.continue_on_step_failure,
        parameters={k: v for k, v in parameters.items() if v is not None},
        data={k: v for k, v in data.items() if v is not None},
        steps={k: v for k, v in steps.items() if v is not None},
        notify=header.notify or [],
        file=file,
        directory=directory,
    )


def describe_pipeline_path(path: PathKey) -> tuple[str, PathKey]:
    """``("steps", "prep", "script")`` -> ("step 'prep'", ("script",))."""
    if len(path) >= 2 and path[0] in _OWNERS:
        return f"{_OWNERS[path[0]]} '{path[1]}'", path[2:]
    return "the pipeline", path


_OWNERS = {"steps": "step", "parameters": "parameter", "data": "data"}


def _mapping(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _entries(
    doc: YamlDocument,
    raw: dict[Any, Any],
    section: str,
    model: type[E],
    errors: list[DefinitionError],
) -> dict[str, E | None]:
    """Validate each entry of ``parameters`` or ``data``; a bad entry maps to None (its name
    still counts as declared, so references to it do not pile up more errors)."""
    result: dict[str, E | None] = {}
    for key, value in _mapping(raw.get(section)).items():
        path = (section, key)
        if not _check_name(doc, path, key, section, errors):
            continue
        if value is None:
            value = {}
        result[key] = validate(model, value, doc, path, describe_pipeline_path, errors)
    return result


def _steps(
    doc: YamlDocument, raw: Any, directory: Path, errors: list[DefinitionError]
) -> dict[str, Step | None] | None:
    if not isinstance(raw, dict):
        return None  # the header reported it
    if not raw:
        errors.append(doc.error(("steps",), "a pipeline needs at least one step"))
    result: dict[str, Step | None] = {}
    for key, value in raw.items():
        path = ("steps", key)
        if not _check_name(doc, path, key, "steps", errors):
            continue
        result[key] = _step(doc, key, value, directory, errors)
    return result


def _step(
    doc: YamlDocument, key: str, value: Any, directory: Path, errors: list[DefinitionError]
) -> Step | None:
    path = ("steps", key)
    if not isinstance(value, dict):
        errors.append(doc.error(path, f"step '{key}' must be a mapping with a 'type'"))
        return None
    kind = value.get("type")
    known = ", ".join(STEP_TYPES)
    if "type" not in value:
        errors.append(
            doc.error(
                path,
                f"missing required field 'type' in step '{key}'",
                hint=f"one of: {known}",
                key=True,
            )
        )
        return None
    if not isinstance(kind, str) or kind not in STEP_TYPES:
        close = did_you_mean(kind, STEP_TYPES, label="known types")
        hint = f"{close} known types: {known}" if close and close.startswith("did") else close
        errors.append(
            doc.error((*path, "type"), f"unknown step type '{kind}' in step '{key}'", hint=hint)
        )
        return None
    ok = True
    if "id" in value:
        errors.append(
            doc.error(
                (*path, "id"),
                f"unknown key 'id' in step '{key}'",
                hint="a step's id is its key under 'steps'",
                key=True,
            )
        )
        ok = False
    model = STEP_TYPES[kind]
    raw = {k: v for k, v in value.items() if k != "id"}
    step = validate(
        model,
        {**raw, "id": key},
        doc,
        path,
        describe_pipeline_path,
        errors,
        context={"directory": directory},
    )
    return step if ok else None


_NAME_RULE = {
    "steps": ("step id", r"^[A-Za-z0-9_][A-Za-z0-9_-]*$"),
    "parameters": ("parameter name", r"^[A-Za-z_][A-Za-z0-9_-]*$"),
    "data": ("data name", r"^[A-Za-z_][A-Za-z0-9_-]*$"),
}


def _check_name(
    doc: YamlDocument, path: PathKey, key: Any, section: str, errors: list[DefinitionError]
) -> bool:
    label, pattern = _NAME_RULE[section]
    if isinstance(key, str) and re.fullmatch(pattern, key):
        return True
    errors.append(
        doc.error(
            path,
            f"bad {label} '{key}'",
            hint="use letters, digits, '_' and '-'"
            + (", starting with a letter or '_'" if section != "steps" else ""),
            key=True,
        )
    )
    return False
