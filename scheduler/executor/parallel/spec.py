"""What one parallel_run attempt is asked to do, as the step module writes it to a JSON file for
the driver process, and how its input becomes mini-batches.

Settings may come from run parameters (``mini_batch_size: ${{parameters.batch}}``): the step
module turns their values into numbers with ``setting``/``batch_size``, and a value that is not
one becomes a line of ``problems``, which the driver reports before it starts anything."""

from __future__ import annotations

import glob
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scheduler.core.errors import PipeschedError
from scheduler.core.secrets import reveal_from_environment
from scheduler.executor.parallel.tables import (
    DEFAULT_BATCH_BYTES,
    DEFAULT_BATCH_FILES,
    parse_size,
)

GLOB_CHARACTERS = frozenset("*?[")


class InputNotFound(PipeschedError):
    """The parallel_run input does not exist."""


class BadSetting(PipeschedError):
    """A setting's value (from a run parameter) is not what the setting takes."""


@dataclass(frozen=True)
class ParallelSpec:
    """Everything the driver needs; plain values only, so it survives JSON."""

    run_key: str  # <run>/<step>/<attempt>: what a Dask worker caches init() under
    entry_script: str
    arguments: list[str]
    input: str
    output_dir: str | None
    output_action: str
    append_row_file_name: str
    mini_batch_size: int
    error_threshold: int
    process_count_per_node: int
    node_count: int
    run_invocation_timeout: float
    run_max_try: int
    interpreter: str
    workdir: str
    workers_dir: str
    source_directory: str
    datastores: dict[str, str] = field(default_factory=dict)
    target_type: str = "local"
    target_name: str = "local"
    address: str | None = None
    environment: dict[str, str] = field(default_factory=dict)  # the step's own variables
    # Read the input as rows: the step's ``tabular`` options (then mini_batch_size is bytes).
    tabular: dict[str, Any] | None = None
    partition_format: str | None = None
    partition_keys: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # settings that could not be used

    def write(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> ParallelSpec:
        with open(path) as handle:
            # The file keeps secret references; their values came in $PIPESCHED_SECRETS.
            data: dict[str, Any] = reveal_from_environment(json.load(handle))
        return cls(**data)

    @property
    def append_row(self) -> bool:
        return self.output_action == "append_row"

    def output_file(self) -> Path:
        """``append_row_file_name`` in the output folder (in ``./outputs`` without an output)."""
        folder = Path(self.output_dir) if self.output_dir else Path(self.workdir) / "outputs"
        return folder / self.append_row_file_name


class _Store:
    def __init__(self, name: str, path: str) -> None:
        self.name, self.path = name, Path(path)


def resolve_input(value: str, datastores: dict[str, str]) -> str:
    """An absolute path or pattern: ``datastore://NAME/REL`` and bare relative paths are in a
    datastore (the default one for a bare path), as for path parameters; absolute paths — what
    ``${{parameters.X}}`` and ``${{data.X}}`` give — are taken as they are."""
    if os.path.isabs(value):
        return value
    # lazy: the driver imports this module, and pydantic (under definitions) would slow its start.
    from scheduler.definitions.parameters import SCHEME, resolve_datastore_path

    stores = {name: _Store(name, path) for name, path in datastores.items()}
    if value.startswith(SCHEME) or stores:
        return str(resolve_datastore_path(value, stores, name="input")[1])
    return os.path.abspath(value)


def list_input(pattern: str) -> list[str]:
    """The files to process: every file under a folder (recursively, sorted), a single file, or
    the files a glob matches (sorted). Symlinks to files count as files (a file-drop batch folder
    holds symlinks)."""
    path = Path(pattern)
    if path.is_dir():
        return sorted(_files_under(str(path)))
    if path.is_file():
        return [str(path)]
    if GLOB_CHARACTERS & set(pattern):
        return sorted(f for f in glob.glob(pattern, recursive=True) if os.path.isfile(f))
    raise InputNotFound(f"input {pattern} does not exist")


def _files_under(folder: str) -> list[str]:
    """Every file under ``folder``, as ``os.walk`` finds them (symlinked folders are not entered,
    unreadable ones are skipped), from the directory entries' types: no ``stat`` per file, which
    is most of the time on a folder of many small files."""
    found: list[str] = []
    folders = [folder]
    while folders:
        try:
            entries = os.scandir(folders.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.path)
                elif entry.is_file():  # a symlink to a file counts
                    found.append(entry.path)
    return found


def mini_batches(files: list[str], size: int) -> list[list[str]]:
    return [files[i : i + size] for i in range(0, len(files), size)]


def setting(name: str, value: object, minimum: int, kind: type[int] | type[float] = int) -> Any:
    """A numeric setting from the definition, or the text a run parameter gave it; a float
    setting is a duration (``90``, ``90s``, ``15m``)."""
    try:
        if kind is float:
            # lazy: the step module reads durations; the driver, which imports this module, never.
            from scheduler.core.durations import parse_duration

            number: float = parse_duration(value if isinstance(value, int | float) else str(value))
        elif isinstance(value, str):
            number = int(value.strip())
        elif isinstance(value, float) and value != int(value):
            raise ValueError(value)
        else:
            number = int(value)  # type: ignore[call-overload]
    except ValueError:
        what = "a duration" if kind is float else "a whole number"
        raise BadSetting(f"{name} {value!r} is not {what}") from None
    if number < minimum:
        raise BadSetting(f"{name} {value!r} must be at least {minimum}")
    return number


def batch_size(value: object, tabular: bool) -> int:
    """mini_batch_size: files per mini-batch (default 10) or, for rows, bytes per mini-batch
    (a number or a size such as ``5MB``; default 1MB), as Azure reads it."""
    if value is None or value == "":
        return DEFAULT_BATCH_BYTES if tabular else DEFAULT_BATCH_FILES
    if not tabular:
        if isinstance(value, str) and not value.strip().isdigit():
            raise BadSetting(
                f"mini_batch_size {value!r} is a size, for tabular inputs: give a number of files"
            )
        return int(setting("mini_batch_size", value, 1))
    try:
        size = parse_size(value if isinstance(value, int) else str(value))
    except ValueError as exc:
        raise BadSetting(f"mini_batch_size: {exc}") from None
    if size < 1:
        raise BadSetting(f"mini_batch_size {value!r} must be at least 1 byte")
    return size
