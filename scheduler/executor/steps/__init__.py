"""One module per step type: each turns one attempt of a step into the argv of its process.

Every step type a definition may name is listed; a type whose module is not there yet is known
to the definitions (``validate`` checks it) but cannot run, and ``submit`` refuses such a pipeline before recording a
run. Modules are imported on first use, so ``pipesched run`` of a python_script pipeline never
imports Dask or nbclient.

A type that is not a plain script (data_transfer, sql, notebook, parallel_run) runs as a child
``python -m <module>`` of pipesched's own interpreter, so timeouts, cancel, logs and process-group
kills work the same for every type.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from typing import Any

from scheduler.executor.steps.base import StepInvocation

# Any: the module is picked by the step's type at run time, so the step model is known only there.
CommandBuilder = Callable[[StepInvocation[Any]], list[str]]

#: step type -> module that defines ``build_command(invocation) -> list[str]``
STEP_MODULES: dict[str, str] = {
    "python_script": "scheduler.executor.steps.python_script",
    "command": "scheduler.executor.steps.command",
    "data_transfer": "scheduler.executor.steps.data_transfer",
    "sql": "scheduler.executor.steps.sql",
    "notebook": "scheduler.executor.steps.notebook",
    "parallel_run": "scheduler.executor.steps.parallel_run",
}


def command_builder(step_type: str) -> CommandBuilder:
    """The ``build_command`` of a step type's module."""
    builder: CommandBuilder = importlib.import_module(STEP_MODULES[step_type]).build_command
    return builder


def runnable_types() -> frozenset[str]:
    """The step types whose module is installed."""
    return frozenset(
        name
        for name, module in STEP_MODULES.items()
        if importlib.util.find_spec(module) is not None
    )
