"""The environment a step process starts with: the ``PIPESCHED_*`` variables its runtime reads,
the step's own variables, and a ``PYTHONPATH`` that finds the runtime and the azureml stand-in.

One definition for both executors (``attempt.py`` and the lean foreground path in ``express.py``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from scheduler.core.runtimes import RunTimes
from scheduler.executor import workdir as wd


def step_variables(
    *,
    run_id: str,
    step: str,
    attempt: int,
    experiment: str,
    paths: wd.AttemptPaths,
    input_datasets: Mapping[str, str],
    datastores: Mapping[str, str],
    output_datasets: Mapping[str, str],
    models_dir: Path,
    interpreter: str,
    state_dir: Path,
    variables: Mapping[str, str],
    run_times: RunTimes,
) -> dict[str, str]:
    """The variables pipesched sets for one attempt (``variables``: the step's own, templated).
    The run's times are always set, empty when the run has no interval."""
    env = {
        "PIPESCHED_RUN_ID": run_id,
        "PIPESCHED_STEP": step,
        "PIPESCHED_ATTEMPT": str(attempt),
        "PIPESCHED_EXPERIMENT": experiment,
        "PIPESCHED_METRICS_FILE": str(paths.metrics),
        "PIPESCHED_IMAGES_DIR": str(paths.images),
        "PIPESCHED_INPUT_DATASETS": json.dumps(dict(input_datasets)),
        # What the azureml stand-in reads: datastores, this step's outputs, the models.
        "PIPESCHED_DATASTORES": json.dumps(dict(datastores)),
        "PIPESCHED_OUTPUT_DATASETS": json.dumps(dict(output_datasets)),
        "PIPESCHED_MODELS_DIR": str(models_dir),
        "PYTHONUNBUFFERED": "1",  # so `pipesched logs -f` sees lines as they are printed
        **run_times.environment(),
    }
    theirs = variables.get("PYTHONPATH", os.environ.get("PYTHONPATH"))
    env.update(variables)
    env["PYTHONPATH"] = python_path(interpreter, state_dir, theirs)
    return env


def python_path(interpreter: str, state_dir: Path, theirs: str | None) -> str:
    """A step's ``PYTHONPATH``. First: the runtime for an interpreter without pipesched, and the
    azureml stand-in's bootstrap (which takes itself off the path again); then the step's own
    PYTHONPATH, or else the one pipesched was started with (``theirs``)."""
    ours = [] if wd.is_own_interpreter(interpreter) else [wd.runtime_shim(state_dir)]
    ours.append(wd.azureml_shim(state_dir))
    return os.pathsep.join([*map(str, ours), *([theirs] if theirs else [])])


def zygote_variables(interpreter: str, state_dir: Path) -> dict[str, str]:
    """The interpreter start-up variables of a zygote: those of a step that sets none itself,
    so that such a step can be forked from it."""
    return {
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": python_path(interpreter, state_dir, os.environ.get("PYTHONPATH")),
    }
