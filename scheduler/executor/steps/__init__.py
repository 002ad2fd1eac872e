"""One module per step type: each turns a step into the argv of its process.

A type missing from ``COMMAND_BUILDERS`` is known to the definitions (``validate`` checks it) but
cannot run yet; ``submit`` refuses such a pipeline before recording a run.
"""

from __future__ import annotations

from collections.abc import Callable

from scheduler.executor.steps import python_script
from scheduler.executor.steps.base import StepInvocation

CommandBuilder = Callable[[StepInvocation], list[str]]

COMMAND_BUILDERS: dict[str, CommandBuilder] = {
    "python_script": python_script.build_command,
}


def runnable_types() -> frozenset[str]:
    return frozenset(COMMAND_BUILDERS)
