"""A Dask distributed cluster as a compute target (``type: dask``, ``address`` of its scheduler;
needs ``pip install 'pipesched[dask]'`` here and pipesched installed on every worker).

Only datastores are shared between this machine and the workers: a step on a Dask target works
in ``<datastore>/.pipesched/runs/<run>/<step>/<attempt>/``, a copy (not a symlink mirror) of its
source directory, and reads and writes datastore paths only. Every datastore a step touches must
be mounted at the same path on every worker. Before a step starts, the step's process checks
that: it writes a probe file with a random token into each datastore and has every worker it
will use read it back; a worker that cannot fails the step with the worker and path named.

Used by the step processes (``scheduler.executor.parallel.dask_pool``, ``scheduler.compute.dask_runner``),
never by the daemon's event loop: connecting to a cluster can take seconds.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scheduler.core.errors import PipeschedError

if TYPE_CHECKING:  # the dask extra: imported when a step connects to a cluster
    from distributed import Client

CONNECT_TIMEOUT = 10.0
PROBE_FOLDER = ".pipesched/probe"
#: Variables a step's process passes on to its remote part: the runtime's contract, nothing of
#: this machine's own environment (its PATH, HOME or venv mean nothing on a worker).
FORWARDED_PREFIX = "PIPESCHED_"
NOT_FORWARDED = frozenset({"PIPESCHED_CONFIG"})


class DaskUnavailable(PipeschedError):
    """Dask is not installed: pip install 'pipesched[dask]'."""


class SchedulerUnreachable(PipeschedError):
    """The Dask scheduler cannot be reached."""


class DatastoreNotShared(PipeschedError):
    """A datastore is not visible at the same path on every Dask worker."""


class NoWorkers(PipeschedError):
    """The Dask cluster has no workers."""


async def connect(address: str, timeout: float = CONNECT_TIMEOUT) -> Client:
    """An asynchronous ``distributed.Client`` for ``address``, or SchedulerUnreachable."""
    try:
        from distributed import Client  # the dask extra: loaded only when a dask target is used
    except ImportError:
        raise DaskUnavailable() from None
    try:
        return await Client(address, asynchronous=True, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise SchedulerUnreachable(
            f"cannot reach the Dask scheduler at {address}: {exc}",
            hint="is the scheduler running, and is `address` of the compute target right?",
        ) from None


async def workers_of(client: Client) -> dict[str, dict[str, Any]]:
    """Address -> worker info (``name``, ``nthreads``, ``nanny``, ``host``) of every worker."""
    info = await client.scheduler.identity(n_workers=-1)  # all workers, not the first few
    return dict(info["workers"])


def roots_touched(datastores: Mapping[str, str], texts: Iterable[str | None]) -> dict[str, str]:
    """The datastores a step reaches: ``default`` (its working directory lives there) and every
    datastore whose folder contains one of ``texts`` (arguments, input, outputs)."""
    roots = {"default": datastores["default"]} if "default" in datastores else {}
    for text in texts:
        if not text or not os.path.isabs(text):
            continue
        for name, root in datastores.items():
            if text == root or text.startswith(root.rstrip(os.sep) + os.sep):
                roots[name] = root
    return roots


def read_probes(probes: dict[str, tuple[str, str]]) -> list[str]:
    """Runs on a worker: the names of the datastores whose probe this worker cannot read back."""
    missing = []
    for name, (path, token) in probes.items():
        try:
            with open(path) as handle:
                if handle.read() != token:
                    missing.append(name)
        except OSError:
            missing.append(name)
    return missing


async def check_shared(
    client: Client, roots: Mapping[str, str], workers: list[str] | None = None
) -> None:
    """Fail with DatastoreNotShared unless every worker (or every one of ``workers``) reads back
    the probe written into each datastore of ``roots``."""
    probes: dict[str, tuple[str, str]] = {}
    try:
        for name, root in roots.items():
            folder = Path(root) / PROBE_FOLDER
            folder.mkdir(parents=True, exist_ok=True)
            token = uuid.uuid4().hex
            path = folder / token
            path.write_text(token)
            probes[name] = (str(path), token)
        answers = await client.run(read_probes, probes, workers=workers, on_error="return")
    finally:
        for probe, _ in probes.values():
            Path(probe).unlink(missing_ok=True)
    problems = []
    for address, missing in sorted(answers.items()):
        if isinstance(missing, BaseException):
            problems.append(f"worker {address} could not be asked ({missing!r})")
        elif missing:
            where = ", ".join(f"'{n}' ({roots[n]})" for n in missing)
            problems.append(f"worker {address} does not see datastore {where}")
    if problems:
        raise DatastoreNotShared(
            "; ".join(problems),
            hint="a dask target needs every datastore a step uses mounted at the same path on "
            "every worker (a shared filesystem)",
        )


def materialize_workdir(workdir: Path, source_directory: Path) -> None:
    """Replace the working directory's symlinks into the source directory with copies: the
    source lives on this machine, the working directory on a datastore the workers see."""
    source = Path(os.path.realpath(source_directory))
    ignore = shutil.ignore_patterns("__pycache__", ".git")
    for entry in os.scandir(workdir):
        if not entry.is_symlink():
            continue
        target = Path(os.path.realpath(entry.path))
        if target != source and source not in target.parents:
            continue
        os.unlink(entry.path)
        if target.is_dir():
            shutil.copytree(target, entry.path, symlinks=True, ignore=ignore)
        elif target.exists():
            shutil.copy2(target, entry.path)


def remote_path(path: str, source_directory: str, workdir: str) -> str:
    """Where a file of the source directory is found in the (copied) working directory."""
    source = source_directory.rstrip(os.sep)
    if path == source or path.startswith(source + os.sep):
        return os.path.join(workdir, os.path.relpath(path, source))
    return path


def forwarded_environment(step_variables: Mapping[str, str]) -> dict[str, str]:
    """The variables a remote part of a step gets on top of the worker's own environment."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key.startswith(FORWARDED_PREFIX) and key not in NOT_FORWARDED
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(step_variables)
    return env
