"""Checks across the fields of a pipeline: names that must be declared, data that must flow from
exactly one producer, no cycles, files that must exist, datastores and compute targets that must
be configured. Each error points at the node that holds the mistake.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scheduler.core.errors import DefinitionError, ParameterError
from scheduler.core.secrets import has_secrets
from scheduler.definitions.config import Config
from scheduler.definitions.graph import find_cycle, graph_from_steps
from scheduler.definitions.parameters import resolve_datastore_path
from scheduler.definitions.pipeline import DataDef, ParameterDef
from scheduler.definitions.steps import STEP_TYPES, Step, StepBase, is_data_name
from scheduler.definitions.templating import NAMESPACES, RUN_FIELDS, TemplateSyntaxError, scan
from scheduler.definitions.validation import declared, did_you_mean
from scheduler.definitions.yamlsource import PathKey, YamlDocument

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_DATASTORE_URL = re.compile(r"datastore://([^/\s]*)")
_PRODUCING_FIELDS = ("output", "destination", "export")
_KIND = {"str": "a str", "int": "an int", "float": "a float", "bool": "a bool", "path": "a path"}


class PipelineContext:
    """What the cross-field checks need: the document, the entries that validated (None for
    those that did not), and the config."""

    def __init__(
        self,
        *,
        doc: YamlDocument,
        directory: Path,
        config: Config | None,
        raw_steps: dict[Any, Any],
        parameters: dict[str, ParameterDef | None],
        data: dict[str, DataDef | None],
        steps: dict[str, Step | None] | None,
        name: str,
    ) -> None:
        self.doc = doc
        self.directory = directory
        self.config = config
        self.raw_steps = raw_steps
        self.parameters = parameters
        self.data = data
        self.steps = steps or {}
        self.name = name
        self.broken: set[str] = set()  # steps whose ${{...}} references are in error


def check_pipeline(ctx: PipelineContext) -> list[DefinitionError]:
    errors: list[DefinitionError] = []
    raw_name = ctx.doc.get(("name",))
    if isinstance(raw_name, str) and not _NAME.fullmatch(raw_name):
        errors.append(
            ctx.doc.error(
                ("name",),
                f"bad pipeline name '{raw_name}'",
                hint="use letters, digits, '_', '-' and '.'",
            )
        )
    for name, param in ctx.parameters.items():
        if param is not None:
            errors.extend(_check_default(ctx, name, param))
    for name, data in ctx.data.items():
        if (
            data is not None
            and ctx.config is not None
            and data.datastore not in ctx.config.datastores
        ):
            errors.append(_unknown_datastore(ctx, ("data", name, "datastore"), data.datastore))
    for step_id, raw in ctx.raw_steps.items():
        if not isinstance(raw, dict) or step_id not in ctx.steps:
            continue
        string_errors = list(_check_strings(ctx, step_id, raw))
        if string_errors:
            ctx.broken.add(step_id)  # its references cannot be followed for the data flow
        errors.extend(string_errors)
        errors.extend(_check_lists(ctx, step_id, raw))
        step = ctx.steps[step_id]
        if step is not None:
            errors.extend(_check_step(ctx, step))
    errors.extend(_check_data_flow(ctx))
    return errors


# -- parameters --------------------------------------------------------------------------------


def _check_default(ctx: PipelineContext, name: str, param: ParameterDef) -> list[DefinitionError]:
    value = param.default
    if value is None:
        return []
    path = ("parameters", name, "default")
    ok = {
        "str": isinstance(value, str),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "path": isinstance(value, str),
    }[param.type]
    if not ok:
        return [
            ctx.doc.error(
                path,
                f"default of parameter '{name}' is not {_KIND[param.type]} (got {value!r})",
                hint="change the default, or the parameter's type",
            )
        ]
    if param.type == "path" and isinstance(value, str) and ctx.config is not None:
        try:
            resolve_datastore_path(value, ctx.config.datastores, name=name)
        except ParameterError as exc:
            return [ctx.doc.error(path, f"default of {exc.message}", hint=exc.hint)]
    return []


# -- one step ----------------------------------------------------------------------------------


def _check_lists(
    ctx: PipelineContext, step_id: str, raw: dict[Any, Any]
) -> Iterator[DefinitionError]:
    """Names in inputs, outputs and depends_on, checked on the raw lists so that a step with
    another mistake still has these reported."""
    base = ("steps", step_id)
    for field in ("inputs", "outputs"):
        for i, name in enumerate(_as_list(raw.get(field))):
            if isinstance(name, str) and name not in ctx.data:
                yield ctx.doc.error(
                    (*base, field, i), f"unknown data '{name}'", hint=declared(ctx.data)
                )
    inputs, outputs = _as_list(raw.get("inputs")), _as_list(raw.get("outputs"))
    for i, name in enumerate(inputs):
        if isinstance(name, str) and name in outputs:
            yield ctx.doc.error(
                (*base, "inputs", i),
                f"step '{step_id}' lists data '{name}' in both inputs and outputs",
                hint="a step cannot read what it writes",
            )
    for i, dep in enumerate(_as_list(raw.get("depends_on"))):
        if isinstance(dep, str) and dep not in ctx.raw_steps:
            close = did_you_mean(dep, [str(s) for s in ctx.raw_steps], label="steps")
            yield ctx.doc.error(
                (*base, "depends_on", i),
                f"step '{step_id}' depends on unknown step '{dep}'",
                hint=close,
            )


def _check_step(ctx: PipelineContext, step: StepBase) -> Iterator[DefinitionError]:
    base = ("steps", step.id)
    raw = ctx.raw_steps[step.id]
    where = f"step '{step.id}'"
    if ctx.config is not None and step.compute not in ctx.config.compute:
        configured = ", ".join(sorted(ctx.config.compute)) or "none"
        yield ctx.doc.error(
            (*base, "compute"),
            f"unknown compute target '{step.compute}' in {where}",
            hint=f"configured: {configured}",
        )
    declared_data = ctx.data
    for field in (*_PRODUCING_FIELDS, "source"):
        value = getattr(step, field, None)
        if not isinstance(value, str) or not is_data_name(value):
            continue
        if value not in declared_data:
            hint = declared(declared_data)
            if field in ("source", "destination"):
                hint += "; or write datastore://NAME/PATH"
            yield ctx.doc.error((*base, field), f"unknown data '{value}'", hint=hint)
    destination = getattr(step, "destination", None)
    if isinstance(destination, str) and "${{data." in destination:
        yield ctx.doc.error(
            (*base, "destination"),
            f"'destination' of {where} names data through a reference",
            hint="write the data name itself, e.g. destination: my_data",
        )
    if getattr(step, "output_action", None) == "append_row" and getattr(step, "output", "") is None:
        yield ctx.doc.error(
            base,
            f"{where} has output_action append_row but no 'output'",
            hint="add output: DATA_NAME, or use output_action: summary_only",
            key=True,
        )
    yield from _check_files(ctx, step, raw)
    url = getattr(step, "url", None)
    if step.type == "sql" and isinstance(url, str) and "${{" not in url:
        yield from _check_url(ctx, step, url)


def _check_files(
    ctx: PipelineContext, step: StepBase, raw: dict[Any, Any]
) -> Iterator[DefinitionError]:
    base = ("steps", step.id)
    directory = step.source_directory
    if not directory.is_dir():
        path = (*base, "source_directory") if "source_directory" in raw else base
        yield ctx.doc.error(
            path,
            f"source directory {_shown(directory, ctx)} of step '{step.id}' does not exist",
            key="source_directory" not in raw,
        )
        return
    for field in step.FILES:
        name = getattr(step, field)
        target = directory / name
        if field == "notebook" and not name.endswith(".ipynb"):
            yield ctx.doc.error(
                (*base, field),
                f"'notebook' of step '{step.id}' must be an .ipynb file (got {name!r})",
            )
        elif not target.is_file():
            yield ctx.doc.error(
                (*base, field),
                f"{field.replace('_', ' ')} '{name}' of step '{step.id}' not found in "
                f"{_shown(directory, ctx)}",
                hint=_close_file(directory, name),
            )


def _close_file(directory: Path, name: str) -> str | None:
    parent = (directory / name).parent
    try:
        files = [p.name for p in parent.iterdir() if p.is_file() and not p.name.startswith(".")]
    except OSError:
        return None
    hint = did_you_mean(Path(name).name, files, label="files there")
    return hint if hint and hint.startswith("did") else None


def _check_url(ctx: PipelineContext, step: StepBase, url: str) -> Iterator[DefinitionError]:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(url)
    except (ArgumentError, ValueError) as exc:
        yield ctx.doc.error(
            ("steps", step.id, "url"),
            f"'url' of step '{step.id}' is not a SQLAlchemy URL: {exc}",
            hint="e.g. sqlite:///data.db or postgresql+psycopg://user@host/db",
        )


def _shown(path: Path, ctx: PipelineContext) -> str:
    try:
        return f"'{Path(os.path.relpath(path, ctx.directory)).as_posix()}'"
    except ValueError:
        return f"'{path}'"


# -- references in strings ----------------------------------------------------------------------


def raw_strings(value: Any, path: PathKey = ()) -> Iterator[tuple[PathKey, str]]:
    """Every string value under ``value`` with its path (mapping keys are not included)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from raw_strings(item, (*path, i))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from raw_strings(item, (*path, key))


def _check_strings(
    ctx: PipelineContext, step_id: str, raw: dict[Any, Any]
) -> Iterator[DefinitionError]:
    kind = raw.get("type")
    model = STEP_TYPES.get(kind) if isinstance(kind, str) else None
    for sub, text in raw_strings(raw):
        if not sub or sub[0] in ("type", "id"):
            continue
        path = ("steps", step_id, *sub)
        if ctx.config is not None:
            for store in _DATASTORE_URL.findall(text):
                if store not in ctx.config.datastores:
                    yield _unknown_datastore(ctx, path, store)
        if "${{" not in text:
            continue
        try:
            refs = scan(text)
        except TemplateSyntaxError as exc:
            yield ctx.doc.error(path, str(exc))
            continue
        if model is not None and not _templated(model, sub):
            fields = ", ".join((*model.TEMPLATED, "environment.variables"))
            yield ctx.doc.error(
                path,
                f"references are not substituted in '{sub[0]}' of step '{step_id}'",
                hint=f"they are substituted in: {fields}",
            )
            continue
        if kind == "notebook" and sub[0] == "parameters" and has_secrets(text):
            yield ctx.doc.error(path, NOTEBOOK_SECRET, hint=NOTEBOOK_SECRET_HINT)
            continue
        for ref in refs:
            problem = _reference_problem(ctx, ref.namespace, ref.name)
            if problem:
                yield ctx.doc.error(path, problem[0], hint=problem[1])


NOTEBOOK_SECRET = (
    "a secret cannot be a notebook parameter: the executed notebook kept with the run would "
    "hold its value"
)
NOTEBOOK_SECRET_HINT = "put it in environment.variables and read it with os.environ"


def _templated(model: type[StepBase], sub: PathKey) -> bool:
    return sub[0] in model.TEMPLATED or tuple(sub[:2]) == ("environment", "variables")


def _reference_problem(ctx: PipelineContext, ns: str, name: str) -> tuple[str, str] | None:
    if ns not in NAMESPACES:
        return (
            f"unknown namespace '{ns}' in '${{{{{ns}.{name}}}}}'",
            f"known: {', '.join(NAMESPACES)}; secrets: ${{{{env.NAME}}}}, ${{{{file:PATH}}}}",
        )
    if ns == "parameters" and name not in ctx.parameters:
        return f"unknown parameter '{name}'", declared(ctx.parameters)
    if ns == "data" and name not in ctx.data:
        return f"unknown data '{name}'", declared(ctx.data)
    if ns == "run" and name not in RUN_FIELDS:
        return f"unknown run field '{name}'", f"known: {', '.join(RUN_FIELDS)}"
    return None


def _unknown_datastore(ctx: PipelineContext, path: PathKey, name: str) -> DefinitionError:
    configured = sorted(ctx.config.datastores) if ctx.config else []
    return ctx.doc.error(
        path, f"unknown datastore '{name}'", hint=f"configured: {', '.join(configured) or 'none'}"
    )


# -- data flow and cycles -----------------------------------------------------------------------


def _flow(ctx: PipelineContext, step_id: str) -> tuple[list[str], set[str], list[str]]:
    """(produces, consumes, depends_on) of a step; best effort from the raw mapping when the
    step did not validate, so its outputs do not show up as missing producers elsewhere."""
    step = ctx.steps.get(step_id)
    if step is not None and step_id not in ctx.broken:
        return step.produces(), step.consumes(), step.depends_on
    raw = ctx.raw_steps.get(step_id)
    raw = raw if isinstance(raw, dict) else {}
    produced = [o for o in _as_list(raw.get("outputs")) if isinstance(o, str)]
    produced += [raw[f] for f in _PRODUCING_FIELDS if isinstance(raw.get(f), str)]
    return produced, set(), []


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _check_data_flow(ctx: PipelineContext) -> Iterator[DefinitionError]:
    flows = {step_id: _flow(ctx, step_id) for step_id in ctx.steps}
    producer: dict[str, str] = {}
    for step_id, (produces, _, _) in flows.items():
        for name in produces:
            first = producer.setdefault(name, step_id)
            if first != step_id:
                yield ctx.doc.error(
                    _data_location(ctx, step_id, name, produce=True),
                    f"data '{name}' is produced by both step '{first}' and step '{step_id}'",
                    hint="each data item has one producer",
                )
    for step_id, (_, consumes, _) in flows.items():
        for name in sorted(consumes):
            if name in ctx.data and name not in producer:
                yield ctx.doc.error(
                    _data_location(ctx, step_id, name, produce=False),
                    f"data '{name}' is read by step '{step_id}' but no step produces it",
                    hint=f"add '{name}' to the outputs of the step that writes it",
                )
    valid = {s: f for s, f in flows.items() if ctx.steps.get(s) is not None and s not in ctx.broken}
    cycle = find_cycle(graph_from_steps(valid))
    if cycle:
        yield ctx.doc.error(
            ("steps", cycle[0]),
            f"steps form a cycle: {' -> '.join(cycle)}",
            hint="remove a depends_on or a data dependency",
            key=True,
        )


def _data_location(ctx: PipelineContext, step_id: str, name: str, *, produce: bool) -> PathKey:
    base = ("steps", step_id)
    raw = ctx.raw_steps.get(step_id) or {}
    field = "outputs" if produce else "inputs"
    items = _as_list(raw.get(field))
    if name in items:
        return (*base, field, items.index(name))
    for key in _PRODUCING_FIELDS if produce else ("source",):
        if raw.get(key) == name:
            return (*base, key)
    for sub, text in raw_strings(raw):
        if f"data.{name}" in text:
            return (*base, *sub)
    return base
