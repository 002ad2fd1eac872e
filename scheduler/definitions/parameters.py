"""Run parameters: ``-p NAME=VALUE`` strings (or typed values from the API and schedules) checked
against a pipeline's declarations, converted, defaulted, and put in canonical form.

Path parameters are confined to datastores by *real path*: ``..`` and symlinks that lead out are
refused, symlinks that stay inside are fine, and the target need not exist yet.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Protocol

from scheduler.core.errors import ParameterError, PathOutsideDatastore
from scheduler.core.pathnames import escape_name, unescape_name
from scheduler.definitions.pipeline import ParameterDef, Pipeline

SCHEME = "datastore://"

ParameterValue = str | int | float | bool
"""A parameter's canonical value: paths as ``datastore://NAME/REL`` strings."""
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


class DatastoreLike(Protocol):
    """What confinement needs of a datastore (scheduler.definitions.config.Datastore has it)."""

    @property
    def name(self) -> str: ...

    @property
    def path(self) -> Path: ...


def resolve_run_parameters(
    pipeline: Pipeline, given: Mapping[str, object], datastores: Mapping[str, DatastoreLike]
) -> dict[str, ParameterValue]:
    """Every declared parameter's canonical value: given ones converted, defaults filled in.

    Raises ParameterError for an unknown name, a missing required one or a bad value.
    """
    declared = pipeline.parameters
    for name in given:
        if name not in declared:
            raise ParameterError(
                f"unknown parameter '{name}' for pipeline '{pipeline.name}'",
                name=str(name),
                hint=_suggest(str(name), declared),
            )
    result: dict[str, ParameterValue] = {}
    for name, param in declared.items():
        if name in given:
            result[name] = convert_parameter(name, param, given[name], datastores)
        elif param.default is not None:
            result[name] = convert_parameter(name, param, param.default, datastores)
        else:
            raise ParameterError(
                f"missing required parameter '{name}' ({param.type}) for pipeline "
                f"'{pipeline.name}'",
                name=name,
                hint=f"pass -p {name}=VALUE",
            )
    return result


def convert_parameter(
    name: str, param: ParameterDef, value: object, datastores: Mapping[str, DatastoreLike]
) -> ParameterValue:
    """One value in canonical form for its declared type; ParameterError when it does not fit."""
    kind = param.type
    try:
        if kind == "path":
            if not isinstance(value, str | os.PathLike):
                raise ValueError("a path must be a string")
            return resolve_datastore_path(os.fspath(value), datastores, name=name)[0]
        return _convert_scalar(kind, value)
    except ParameterError:
        raise
    except ValueError as exc:
        raise ParameterError(
            f"parameter '{name}' must be {_ARTICLE[kind]}: {exc}", name=name
        ) from None


_ARTICLE = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "path": "a path",
}


def _convert_scalar(kind: str, value: object) -> ParameterValue:
    if value is None or isinstance(value, dict | list | tuple | set):
        raise ValueError(f"got {value!r}")
    if kind == "str":
        if isinstance(value, bool):
            return "True" if value else "False"
        return value if isinstance(value, str) else str(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float) and value in (0, 1):
            return bool(value)
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"got {value!r} (write true/false, yes/no or 1/0)")
    if isinstance(value, bool):
        raise ValueError(f"got {value!r}")
    if kind == "int":
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            if value.is_integer():
                return int(value)
            raise ValueError(f"got {value!r}")
        try:
            return int(str(value).strip())
        except ValueError:
            raise ValueError(f"got {value!r}") from None
    if kind == "float":
        try:
            number = float(value if isinstance(value, int | float) else str(value).strip())
        except ValueError:
            raise ValueError(f"got {value!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"got {value!r} (must be finite)")
        return number
    raise ValueError(f"unknown parameter type {kind!r}")


def resolve_datastore_path(
    value: str, datastores: Mapping[str, DatastoreLike], *, name: str = "path"
) -> tuple[str, Path]:
    """``(canonical, absolute real path)`` of a path value.

    ``datastore://NAME/REL``; a bare relative path is in the ``default`` datastore; an absolute
    path is accepted only when its real path lies inside a datastore. ``name`` is the parameter
    the errors name.
    """
    value = str(value)
    if not value.strip():
        raise ParameterError(f"parameter '{name}' is an empty path", name=name)
    if value.startswith(SCHEME):
        store_name, _, rel = value[len(SCHEME) :].partition("/")
        store = _datastore(store_name, datastores, name)
        return _confine(store, rel, value, name)
    if os.path.isabs(value):
        real = Path(os.path.realpath(value))
        best: DatastoreLike | None = None
        for store in datastores.values():
            root = _real_root(store)
            if _inside(real, root) and (
                best is None or len(str(root)) > len(str(_real_root(best)))
            ):
                best = store
        if best is None:
            raise PathOutsideDatastore(
                f"parameter '{name}': {value} is not inside a datastore",
                name=name,
                hint=f"datastores: {_roots(datastores)}",
            )
        return _canonical(best, real), real
    store = _datastore("default", datastores, name)
    return _confine(store, value, value, name)


def argv_value(
    param: ParameterDef, canonical: ParameterValue | None, datastores: Mapping[str, DatastoreLike]
) -> str:
    """What a step's argv receives for a parameter: the absolute real path for paths, ``True``/
    ``False`` for bools (as Azure ML passes them), ``str()`` of numbers."""
    if param.type == "path":
        return str(resolve_datastore_path(str(canonical), datastores)[1])
    if isinstance(canonical, bool):
        return "True" if canonical else "False"
    return str(canonical)


def _datastore(
    store_name: str, datastores: Mapping[str, DatastoreLike], param: str
) -> DatastoreLike:
    store = datastores.get(store_name)
    if store is None:
        raise ParameterError(
            f"parameter '{param}': unknown datastore '{store_name}'",
            name=param,
            hint=f"configured: {', '.join(sorted(datastores)) or 'none'}",
        )
    return store


def _confine(store: DatastoreLike, rel: str, value: str, param: str) -> tuple[str, Path]:
    root = _real_root(store)
    real = Path(os.path.realpath(os.path.join(root, unescape_name(rel))))  # escaped text
    if not _inside(real, root):
        raise PathOutsideDatastore(
            f"parameter '{param}': {value} leads outside datastore '{store.name}' ({root})",
            name=param,
            hint="use a path inside the datastore; '..' and symlinks may not lead out of it",
        )
    return _canonical(store, real), real


def _canonical(store: DatastoreLike, real: Path) -> str:
    rel = real.relative_to(_real_root(store))
    text = PurePosixPath(*rel.parts).as_posix() if rel.parts else ""
    return f"{SCHEME}{store.name}/{escape_name(text)}"


def _real_root(store: DatastoreLike) -> Path:
    return Path(os.path.realpath(store.path))


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def _roots(datastores: Mapping[str, DatastoreLike]) -> str:
    return ", ".join(f"{n} = {s.path}" for n, s in sorted(datastores.items())) or "none"


def _suggest(name: str, declared: Mapping[str, object]) -> str:
    import difflib

    names = sorted(declared)
    if not names:
        return "this pipeline declares no parameters"
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    listed = f"declared: {', '.join(names)}"
    return f"did you mean '{close[0]}'? {listed}" if close else listed
