"""The notebook step: a Jupyter notebook executed headless by nbclient (``pipesched[notebook]``)
in ``scheduler.executor.runners.notebook``, its ``parameters`` injected papermill's way, the
executed notebook kept as ``outputs/<notebook name>`` of the step run."""

from __future__ import annotations

from pathlib import Path

from scheduler.executor.runners import spec_command
from scheduler.executor.steps.base import StepInvocation


def build_command(inv: StepInvocation) -> list[str]:
    step = inv.step
    parameters = {
        name: inv.sub(value) if isinstance(value, str) else value
        for name, value in step.parameters.items()
    }
    spec = {
        "notebook": str(step.notebook_path),
        "parameters": parameters,
        "output": str(inv.workdir / "outputs" / Path(step.notebook).name),
        "kernel_python": inv.interpreter,  # environment.python, else pipesched's own
    }
    return spec_command(inv, "notebook", spec)
