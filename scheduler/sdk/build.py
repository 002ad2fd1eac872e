"""An SDK ``Pipeline(steps)`` turned into pipeline.yaml data, then validated by the same
``build_pipeline`` that reads a pipeline.yaml: one model, two front ends.

The document carries a position for each step (the user's line that made it), each data item
and parameter, and the pipeline itself (its ``Pipeline(...)`` call), so a mistake reads
``notebook.py:42:1: error: ... step 'train' ...``.

Source directories are written relative to the parent of their common folder (``base``):
``Pipeline.save`` copies each to the same relative place beside pipeline.yaml, so the saved
definition's ``definition_dict()`` and reuse fingerprints equal the in-memory one's.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scheduler.core.errors import DefinitionError, DefinitionErrors, SourcePosition
from scheduler.definitions import Pipeline as Definition
from scheduler.definitions import YamlDocument, build_pipeline, display_path
from scheduler.sdk.data import DataInput, PipelineParameter, _Output
from scheduler.sdk.datapath import DataPath, DataReference, path_default
from scheduler.sdk.datasets import AbstractDataset, DatasetConsumptionConfig
from scheduler.sdk.steps import PipelineStep

if TYPE_CHECKING:
    from scheduler.definitions.config import Config

Where = tuple[str, int]


def slug(name: str) -> str:
    """A step id from a display name: lowercase, anything but [a-z0-9_-] becomes '-'."""
    text = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-")
    return re.sub(r"-{2,}", "-", text) or "step"


def collect_steps(steps: list[PipelineStep], resolve_closure: bool) -> list[PipelineStep]:
    """The pipeline's steps: those given plus, with ``resolve_closure`` (Azure's default), every
    step that produces data they read or that they run after; producers come first."""
    order: list[PipelineStep] = []
    seen: set[int] = set()

    def visit(step: PipelineStep) -> None:
        if id(step) in seen:
            return
        seen.add(id(step))
        if resolve_closure:
            for needed in step._dependencies():
                visit(needed)
        order.append(step)

    for step in steps:
        if not isinstance(step, PipelineStep):
            raise DefinitionErrors(
                [DefinitionError(f"a {type(step).__name__} is not a pipeline step")]
            )
        visit(step)
    return order


def _position(where: Where) -> SourcePosition:
    return SourcePosition(file=display_path(Path(where[0])), line=where[1], column=1)


def _input_name(uri: str) -> str:
    """A parameter name for an unnamed dataset: the folder's last part."""
    last = uri.rstrip("/").rsplit("/", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9_]+", "_", last).strip("_")
    return name if re.match(r"[A-Za-z_]", name) else f"input_{name}".rstrip("_")


class Resolver:
    """Turns SDK values into names and ``${{...}}`` text, declaring each data item and
    parameter once; conflicting declarations become errors at the user's line."""

    def __init__(
        self,
        steps: dict[str, PipelineStep],
        default_datastore: str,
        base: Path,
        default_source: Path | None,
    ) -> None:
        self.ids = {id(step): step_id for step_id, step in steps.items()}
        self.default_datastore = default_datastore
        self.base = base
        self.default_source = default_source
        self.data_decl: dict[str, dict[str, Any]] = {}
        self.param_decl: dict[str, dict[str, Any]] = {}
        self.where: dict[tuple[str, str], Where] = {}
        self.errors: list[DefinitionError] = []
        self._data_names: dict[int, str] = {}
        self._owners: dict[str, _Output] = {}
        self._unnamed: dict[str, str] = {}
        self._keep: list[Any] = []  # keeps id() keys alive

    # -- what steps ask ------------------------------------------------------------------------

    def step_id(self, step: PipelineStep) -> str:
        return self.ids.get(id(step), slug(step.name))

    def source(self, step: PipelineStep) -> str | None:
        directory = source_directory(step, self.default_source)
        if directory is None:
            return None
        return Path(os.path.relpath(directory, self.base)).as_posix()

    def text(self, value: Any) -> str:
        """One argument (or other templated string) as the step sees it."""
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "True" if value else "False"
        if isinstance(value, int | float):
            return str(value)
        if isinstance(value, _Output | DataInput):
            data = value.data if isinstance(value, DataInput) else value
            return f"${{{{data.{self.data(value)}}}}}{data._path_suffix()}"
        return f"${{{{parameters.{self.parameter(value)}}}}}"

    def location(self, value: Any) -> str:
        """A data_transfer end: a data name, a ``datastore://`` path, or a parameter."""
        if isinstance(value, _Output | DataInput):
            return self.data(value)
        if isinstance(value, DataPath | DataReference):
            return value._uri()
        return self.text(value)

    def data(self, value: Any) -> str:
        data = value.data if isinstance(value, DataInput) else value
        known = self._data_names.get(id(data))
        if known is not None:
            return known
        name = data.name or self._free(data._auto_name, self.data_decl)
        first = self._owners.get(name)
        if first is not None and first is not data:
            self.errors.append(
                DefinitionError(
                    f"two {type(data).__name__} objects are named '{name}' (the first made at "
                    f"{_position(first._where)})",
                    position=_position(data._where),
                    hint="make one object and pass it to every step that uses it",
                )
            )
        else:
            store = data._datastore_name or self.default_datastore
            self.data_decl[name] = {"datastore": store} if store != "default" else {}
            self.where[("data", name)] = data._where
            self._owners[name] = data
        self._data_names[id(data)] = name
        self._keep.append(data)
        return name

    def parameter(self, value: Any) -> str:
        if isinstance(value, tuple):  # (PipelineParameter or DataPath, DataPathComputeBinding)
            value = value[0]
        if isinstance(value, DatasetConsumptionConfig) and isinstance(
            value.dataset, PipelineParameter
        ):
            value = value.dataset
        if isinstance(value, PipelineParameter):
            return self._declare(value.name, value._declaration(), value._where, explicit=True)
        if not isinstance(
            value, DatasetConsumptionConfig | AbstractDataset | DataPath | DataReference
        ):
            raise TypeError(f"not an SDK value: {value!r}")
        uri = path_default(value)
        assert uri is not None
        name = value.name
        if name is None and isinstance(value, DatasetConsumptionConfig):
            name = value.dataset.name
        decl = {"type": "path", "default": uri}
        if name is not None:
            return self._declare(name, decl, value._where, explicit=True)
        if uri not in self._unnamed:  # one parameter per folder read without a name
            free = self._free(_input_name(uri), self.param_decl)
            self._unnamed[uri] = self._declare(free, decl, value._where, explicit=False)
        return self._unnamed[uri]

    # -- helpers ---------------------------------------------------------------------------------

    def _declare(self, name: str, decl: dict[str, Any], where: Where, *, explicit: bool) -> str:
        known = self.param_decl.get(name)
        if known is None:
            self.param_decl[name] = decl
            self.where[("parameters", name)] = where
        elif known != decl and explicit:
            first = _position(self.where[("parameters", name)])
            self.errors.append(
                DefinitionError(
                    f"parameter '{name}' is declared twice, differently (first at {first}: "
                    f"{_show(known)}; here: {_show(decl)})",
                    position=_position(where),
                    hint="give each input or PipelineParameter its own name",
                )
            )
        return name

    @staticmethod
    def _free(base: str, taken: dict[str, Any]) -> str:
        if base not in taken:
            return base
        n = 2
        while f"{base}_{n}" in taken:
            n += 1
        return f"{base}_{n}"


def _show(decl: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v!r}" for k, v in decl.items())


def source_directory(step: PipelineStep, default: Path | None) -> Path | None:
    """Where a step's files are: its own source_directory, else the pipeline's
    default_source_directory, else the working directory when the step was made (Azure's
    rule). None for a step without files (data_transfer)."""
    if step._type == "data_transfer":
        return None
    return step._source_directory or default or step._cwd


@dataclass
class Built:
    """A built SDK pipeline: the YAML data, its positions, and where its files come from."""

    data: dict[str, Any]
    doc: YamlDocument
    base: Path
    sources: dict[str, Path] = field(default_factory=dict)  # relative place -> folder


def build_data(
    steps: list[PipelineStep],
    *,
    name: str | None,
    header: dict[str, Any],
    where: Where,
    resolve_closure: bool,
    default_datastore: str,
    default_source: Path | None,
) -> Built:
    """The pipeline.yaml mapping of an SDK pipeline, and a YamlDocument that places each part
    at the user's line."""
    collected = collect_steps(steps, resolve_closure)
    by_id: dict[str, PipelineStep] = {}
    for step in collected:
        step_id, n = slug(step.name), 2
        while step_id in by_id:
            step_id = f"{slug(step.name)}-{n}"
            n += 1
        by_id[step_id] = step
    directories = [d for s in collected if (d := source_directory(s, default_source))]
    anchor = default_source or Path(os.getcwd())
    common = Path(os.path.commonpath(directories)) if directories else anchor
    # Each source directory gets a folder of its own beside pipeline.yaml.
    base = common.parent if common in directories or not directories else common
    r = Resolver(by_id, default_datastore, base, default_source)
    yaml_steps = {step_id: step._yaml(r) for step_id, step in by_id.items()}
    data: dict[str, Any] = {}
    if name is not None:
        data["name"] = name
    data.update({k: v for k, v in header.items() if v not in (None, False, "")})
    if r.param_decl:
        data["parameters"] = dict(sorted(r.param_decl.items()))
    if r.data_decl:
        data["data"] = dict(r.data_decl)
    data["steps"] = yaml_steps
    file = Path(where[0])
    doc = YamlDocument(file=display_path(file), data=data, errors=list(r.errors))
    doc.values[()] = _position(where)
    for step_id, step in by_id.items():
        doc.values[("steps", step_id)] = doc.keys[("steps", step_id)] = _position(step._where)
    for (section, key), place in r.where.items():
        doc.values[(section, key)] = doc.keys[(section, key)] = _position(place)
    sources = {Path(os.path.relpath(d, base)).as_posix(): d for d in sorted(set(directories))}
    return Built(data=data, doc=doc, base=base, sources=sources)


def validate_built(built: Built, config: Config | None) -> Definition:
    """The validated definition (DefinitionErrors at the user's lines otherwise)."""
    return build_pipeline(built.doc, built.base / "pipeline.yaml", config)
