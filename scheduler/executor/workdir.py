"""Folders of a step attempt: its working directory (a symlink mirror of the source directory's top
level plus an empty ``outputs/``, like Azure ML's snapshot), its log, metrics and images."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import scheduler.runtime
from scheduler.executor.azureml_compat import shim_files


@dataclass(frozen=True)
class AttemptPaths:
    workdir: Path
    log: Path
    metrics: Path
    images: Path

    @classmethod
    def for_attempt(
        cls, runs_dir: Path, run_id: str, step: str, attempt: int, shared: Path | None = None
    ) -> AttemptPaths:
        """``shared``: a datastore, for steps that run on a Dask worker — their working
        directory, metrics and images go to ``<shared>/.pipesched/runs/<run>/<step>/`` because
        only datastores are visible to every worker; the log stays in ``runs_dir``."""
        base = runs_dir / run_id / step
        remote = shared / ".pipesched" / "runs" / run_id / step if shared is not None else base
        return cls(
            workdir=remote / str(attempt),
            log=base / f"{attempt}.log",
            metrics=remote / f"{attempt}.metrics.jsonl",
            images=remote / f"{attempt}.images",
        )


LOG_MODE = 0o600  # a step's log is its owner's alone, whatever the umask


def private_opener(path: str, flags: int) -> int:
    """``open(..., opener=private_opener)``: a file created 0600 (a step log)."""
    return os.open(path, flags, LOG_MODE)


def note_in_log(log_path: Path, text: str) -> None:
    """A line of pipesched's own in the step's log, so `pipesched logs` tells the whole story."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", opener=private_opener) as handle:
        handle.write(f"[pipesched] {text}\n")


def prepare_workdir(paths: AttemptPaths, source_directory: Path) -> None:
    """Create the working directory: top-level entries of the source as symlinks, and ``outputs/``."""
    paths.workdir.mkdir(parents=True, exist_ok=True)
    for entry in os.scandir(source_directory):
        if entry.name == "outputs":
            continue
        link = paths.workdir / entry.name
        if not link.exists() and not link.is_symlink():
            link.symlink_to(entry.path, target_is_directory=entry.is_dir())
    (paths.workdir / "outputs").mkdir(exist_ok=True)


def reset_output_dir(path: Path) -> None:
    """An empty folder for a data output: a retried attempt never sees its predecessor's files."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)


# The copy's ``scheduler/__init__.py``: a portion of the package, so that a process of pipesched's
# own that inherits the step's PYTHONPATH (the parallel_run driver) still finds the rest of it.
RUNTIME_SHIM_INIT = b"""\"\"\"pipesched's step runtime, for an interpreter without pipesched.\"\"\"

__path__ = __import__("pkgutil").extend_path(__path__, __name__)
"""


def runtime_shim(state_dir: Path) -> Path:
    """A folder holding only ``scheduler/runtime.py``, for steps on another interpreter that lacks
    pipesched (the runtime is stdlib-only). Rewritten when the installed runtime changes."""
    source = Path(scheduler.runtime.__file__).read_bytes()
    tag = hashlib.sha256(RUNTIME_SHIM_INIT + b"\0" + source).hexdigest()[:12]
    shim = state_dir / "lib" / f"runtime-{tag}"
    target = shim / "scheduler" / "runtime.py"
    if not target.exists():
        tmp = shim.with_name(f"{shim.name}.tmp{os.getpid()}")
        (tmp / "scheduler").mkdir(parents=True, exist_ok=True)
        (tmp / "scheduler" / "__init__.py").write_bytes(RUNTIME_SHIM_INIT)
        (tmp / "scheduler" / "runtime.py").write_bytes(source)
        try:
            tmp.rename(shim)
        except OSError:  # another process made it first
            shutil.rmtree(tmp, ignore_errors=True)
    return shim


def azureml_shim(state_dir: Path) -> Path:
    """The folder to put first on a step's ``PYTHONPATH`` so that ``import azureml`` finds
    pipesched's stand-in when, and only when, the step's environment has no Azure ML SDK: it
    holds only a ``sitecustomize`` that steps aside and appends a last-resort finder (see
    ``scheduler.executor.azureml_compat``). Rewritten when the installed stand-in changes."""
    files = shim_files()
    digest = hashlib.sha256()
    for name, data in sorted(files.items()):
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    shim = state_dir / "lib" / f"azureml-{digest.hexdigest()[:12]}"
    if not shim.exists():
        tmp = shim.with_name(f"{shim.name}.tmp{os.getpid()}")
        for name, data in files.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_bytes(data)
        try:
            tmp.rename(shim)
        except OSError:  # another process made it first
            shutil.rmtree(tmp, ignore_errors=True)
    return shim / "boot"


def resolve_interpreter(python: str | None, base_dir: Path) -> str | None:
    """The interpreter a step runs on: pipesched's own by default, a path (relative to the
    pipeline folder) or a command name. Symlinks are kept: a venv's python finds its venv by them."""
    if python is None:
        return sys.executable
    if os.sep in python:
        path = Path(python) if os.path.isabs(python) else base_dir / python
        return str(path) if os.access(path, os.X_OK) else None
    return shutil.which(python)


def interpreter_prefix(interpreter: str) -> str:
    """The environment an interpreter belongs to. A venv's python is a symlink to its base
    python, so the binary alone does not tell two environments apart: the venv folder does."""
    path = os.path.abspath(interpreter)
    venv = os.path.dirname(os.path.dirname(path))
    if os.path.exists(os.path.join(venv, "pyvenv.cfg")):
        return os.path.realpath(venv)
    return os.path.dirname(os.path.dirname(os.path.realpath(path)))


def is_own_interpreter(interpreter: str) -> bool:
    return interpreter_prefix(interpreter) == os.path.realpath(sys.prefix)
