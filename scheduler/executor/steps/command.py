"""CommandStep (the DatabricksStep counterpart: a JAR, spark-submit, R, a shell tool): the
``command`` list with ``${{...}}`` substituted, each element one argv entry, never a shell.

It runs in the attempt's working directory, which mirrors the source directory, so
``[./score.sh, ...]`` or ``[Rscript, model.R]`` find the step's own files. A bare program name is
looked up on the step's ``PATH`` (its ``environment.variables`` win over the daemon's).
"""

from __future__ import annotations

import os
import shutil

from scheduler.definitions.steps import CommandStep
from scheduler.executor.runners import error_command
from scheduler.executor.steps.base import StepInvocation
from scheduler.executor.steps.remote import remote_command


def build_command(inv: StepInvocation[CommandStep]) -> list[str]:
    argv = [inv.sub(str(part)) for part in inv.step.command]
    if inv.target is None or inv.target.type == "local":
        problem = _missing_program(argv[0], inv)
        if problem:
            # exec would raise in the daemon; a failing step with the reason in its log is what
            # a user can act on (127: what a shell answers for "command not found").
            return error_command(inv, problem, exit_code=127)
        return argv
    return remote_command(inv, argv)


def _missing_program(program: str, inv: StepInvocation[CommandStep]) -> str | None:
    if os.sep in program:
        path = program if os.path.isabs(program) else os.path.join(inv.workdir, program)
        if not os.path.isfile(path):
            return f"command not found: {program} (no such file in {inv.workdir})"
        if not os.access(path, os.X_OK):
            return f"command not executable: {program} (chmod +x it, or run it via its interpreter)"
        return None
    variables = inv.step.environment.variables
    search = (
        inv.sub(variables["PATH"]) if "PATH" in variables else os.environ.get("PATH", os.defpath)
    )
    if shutil.which(program, path=search) is None:
        return f"command not found: {program} (searched PATH={search})"
    return None
