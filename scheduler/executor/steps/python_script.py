"""PythonScriptStep: ``[python, <absolute script path>, *arguments]``, each argument one argv element."""

from __future__ import annotations

from scheduler.executor.steps.base import StepInvocation


def build_command(inv: StepInvocation) -> list[str]:
    step = inv.step
    return [inv.interpreter, str(step.script_path), *(inv.sub(str(a)) for a in step.arguments)]
