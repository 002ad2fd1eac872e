"""ParallelRunStep: the step's process is the parallel_run driver on pipesched's own interpreter;
the driver starts the workers (on the step's interpreter, or on Dask workers).

The attempt's settings go to ``<attempt>.parallel_run.json`` beside the attempt's working
directory, where a user can read what the driver was asked to do; per-worker logs go to
``<attempt>.workers/``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from scheduler.definitions.steps import ParallelRunStep
from scheduler.executor.parallel.spec import BadSetting, ParallelSpec, batch_size, setting
from scheduler.executor.steps.base import StepInvocation


def build_command(inv: StepInvocation[ParallelRunStep]) -> list[str]:
    step = inv.step
    base = inv.workdir.parent
    target = inv.target
    output_dir = (inv.outputs or {}).get(step.output) if step.output else None
    tabular = step.tabular.model_dump() if step.tabular is not None else None
    problems: list[str] = []

    def value(make: Callable[[Any], Any], raw: Any, fallback: Any) -> Any:
        """A setting, its ${{parameters.X}} given the run's value; a bad value is reported by
        the driver (``problems``) rather than raised here, so the step fails with the reason."""
        try:
            return make(inv.sub(raw) if isinstance(raw, str) else raw)
        except BadSetting as exc:
            problems.append(str(exc))
            return fallback

    spec = ParallelSpec(
        run_key=f"{inv.run_id}/{step.id}/{inv.attempt}",
        entry_script=str(step.entry_script_path),
        arguments=[inv.sub(str(a)) for a in step.arguments],
        input=inv.sub(step.input),
        output_dir=output_dir,
        output_action=step.output_action,
        append_row_file_name=step.append_row_file_name,
        mini_batch_size=value(
            lambda v: batch_size(v, tabular is not None), step.mini_batch_size, 1
        ),
        error_threshold=value(
            lambda v: setting("error_threshold", v, -1), step.error_threshold, -1
        ),
        process_count_per_node=value(
            lambda v: setting("process_count_per_node", v, 1), step.process_count_per_node, 1
        ),
        node_count=value(lambda v: setting("node_count", v, 1), step.node_count, 1),
        run_invocation_timeout=value(
            lambda v: setting("run_invocation_timeout", v, 0, float), step.run_invocation_timeout, 0
        ),
        run_max_try=value(lambda v: setting("run_max_try", v, 1), step.run_max_try, 1),
        interpreter=inv.interpreter,
        workdir=str(inv.workdir),
        workers_dir=str(base / f"{inv.attempt}.workers"),
        source_directory=str(step.source_directory),
        datastores=(
            {name: str(store.path) for name, store in inv.config.datastores.items()}
            if inv.config is not None
            else {}
        ),
        target_type=target.type if target is not None else "local",
        target_name=target.name if target is not None else "local",
        address=target.address if target is not None else None,
        environment={k: inv.sub(v) for k, v in step.environment.variables.items()},
        tabular=tabular,
        partition_format=step.partition_format,
        partition_keys=list(step.partition_keys),
        problems=problems,
    )
    spec_path = base / f"{inv.attempt}.parallel_run.json"
    if inv.paths is not None:  # on a dask target the log's folder is not the workdir's parent
        inv.paths.log.parent.mkdir(parents=True, exist_ok=True)
    spec.write(spec_path)
    # -P: the working directory (a mirror of the user's source) must not shadow our modules.
    return [sys.executable, "-P", "-m", "scheduler.executor.parallel.driver", str(spec_path)]
