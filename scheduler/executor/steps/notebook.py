"""The notebook step: a Jupyter notebook executed headless by nbclient (``pipesched[notebook]``)
in ``scheduler.executor.runners.notebook``, its ``parameters`` injected papermill's way, the
executed notebook kept as ``outputs/<notebook name>`` of the step run.

A parameter value written as exactly one ``${{parameters.X}}`` reaches the notebook with the type
its text reads as (``typed_value``: ``alpha: "${{parameters.alpha}}"`` gives ``alpha = 0.5``, not
``'0.5'``); YAML values keep their own type; any other string stays a string.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scheduler.definitions.steps import NotebookStep
from scheduler.definitions.templating import scan
from scheduler.executor.runners import spec_command, typed_value
from scheduler.executor.steps.base import StepInvocation


def build_command(inv: StepInvocation[NotebookStep]) -> list[str]:
    step = inv.step
    spec = {
        "notebook": str(step.notebook_path),
        "parameters": {name: _value(inv, v) for name, v in step.parameters.items()},
        "output": str(inv.workdir / "outputs" / Path(step.notebook).name),
        "kernel_python": inv.interpreter,  # environment.python, else pipesched's own
    }
    return spec_command(inv, "notebook", spec)


def _value(inv: StepInvocation[NotebookStep], value: Any) -> Any:
    if not isinstance(value, str):
        return value
    refs = scan(value)
    whole = len(refs) == 1 and refs[0].start == 0 and refs[0].end == len(value)
    if whole and refs[0].namespace == "parameters":
        return typed_value(inv.sub(value))
    return inv.sub(value)
