"""The local command of a ``python_script`` or ``command`` step whose argv runs on a Dask
worker: its spec (the argv with local paths mapped to the worker's, the datastores, the log) is
written beside the attempt, and ``scheduler.compute.dask_runner`` is the local process that runs
it remotely."""

from __future__ import annotations

import json
import sys
import uuid

from scheduler.compute import dask as dask_target
from scheduler.compute.dask_runner import WORKER_PYTHON
from scheduler.definitions.steps import StepBase
from scheduler.executor.steps.base import StepInvocation


def remote_command(inv: StepInvocation[StepBase], argv: list[str]) -> list[str]:
    """The local command for a step whose ``argv`` must run on a Dask worker (``inv`` is an
    invocation on a dask target): ``python -m scheduler.compute.dask_runner <spec>``."""
    step, paths, target, config = inv.step, inv.paths, inv.target, inv.config
    if target is None or target.address is None or config is None:
        raise ValueError(f"step '{step.id}' is not on a dask target with an address")
    source, workdir = str(step.source_directory), str(inv.workdir)
    remote = [dask_target.remote_path(a, source, workdir) for a in argv]
    if step.environment.python is None and argv and argv[0] == sys.executable:
        remote[0] = WORKER_PYTHON
    base = inv.workdir.parent
    spec = {
        "argv": remote,
        "workdir": workdir,
        "source_directory": source,
        "log": str(base / f"{inv.attempt}.remote.log"),
        "address": target.address,
        "datastores": {n: str(d.path) for n, d in config.datastores.items()},
        "environment": {k: inv.sub(v) for k, v in step.environment.variables.items()},
        "key": f"pipesched-{inv.run_id}-{step.id}-{inv.attempt}-{uuid.uuid4().hex[:8]}",
    }
    spec_path = base / f"{inv.attempt}.dask.json"
    spec_path.write_text(json.dumps(spec, indent=2))
    if paths is not None:
        paths.log.parent.mkdir(parents=True, exist_ok=True)  # the log stays in the state dir
    return [sys.executable, "-P", "-m", "scheduler.compute.dask_runner", str(spec_path)]
