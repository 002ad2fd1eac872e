"""PythonScriptStep: ``[python, <absolute script path>, *arguments]``, each argument one argv element."""

from __future__ import annotations

from scheduler.definitions.steps import PythonScriptStep
from scheduler.executor.steps.base import StepInvocation
from scheduler.executor.steps.remote import remote_command


def build_command(inv: StepInvocation[PythonScriptStep]) -> list[str]:
    step = inv.step
    argv = [inv.interpreter, str(step.script_path), *(inv.sub(str(a)) for a in step.arguments)]
    if inv.target is not None and inv.target.type == "dask":  # runs on a Dask worker
        return remote_command(inv, argv)
    return argv
