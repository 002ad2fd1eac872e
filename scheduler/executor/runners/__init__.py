"""Child processes of the step types that are not a user's own program (data_transfer, sql,
notebook): each is ``python -m scheduler.executor.runners.<type> <spec.json>`` on pipesched's
own interpreter, so timeouts, cancel, logs and process-group kills stay the executor's.

The parent side (``spec_command``) writes the step's resolved fields as JSON next to the
attempt's log; the child side (``run_main``) reads it back. What a runner prints is the step's
log. A problem the user can fix ends the process with one ``error: ...`` line and exit code 1;
anything else keeps its traceback, as a bug of ours should.

This module is imported by both sides, so it stays standard library only.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scheduler.core.secrets import reveal_from_environment  # standard library only

if TYPE_CHECKING:  # types only: at run time this module stays standard library only
    from scheduler.definitions.steps import StepBase
    from scheduler.executor.steps.base import StepInvocation

__all__ = [
    "StepFailed",
    "error_command",
    "load_spec",
    "run_main",
    "say",
    "spec_command",
    "typed_value",
]

RUNNERS = "scheduler.executor.runners"


class StepFailed(Exception):
    """The step cannot succeed for a reason its log should state in one line."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_FLOAT = re.compile(r"-?[0-9]+(?:\.[0-9]+(?:[eE][-+]?[0-9]+)?|[eE][-+]?[0-9]+)")


def typed_value(text: str) -> Any:
    """A parameter's argv text read back as the value it spells: ``True``/``False`` (how argv
    writes a bool), an integer without leading zeros, a decimal number; else the text itself.

    Steps receive parameters as argv strings (types are not part of StepInvocation), so where
    a type matters — SQLite binds, notebook variables — this is the documented guess."""
    if text in ("True", "False"):
        return text == "True"
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


# -- parent side ----------------------------------------------------------------------------------


def spec_path(inv: StepInvocation[StepBase]) -> Path:
    """``<attempt>.spec.json`` beside the attempt's log."""
    if inv.paths is not None:
        return inv.paths.log.with_suffix(".spec.json")
    return inv.workdir.parent / f"{inv.attempt}.spec.json"


def spec_command(inv: StepInvocation[StepBase], runner: str, spec: Mapping[str, Any]) -> list[str]:
    """Write ``spec`` for the runner module ``runner`` and return the argv that starts it."""
    path = spec_path(inv)
    path.parent.mkdir(parents=True, exist_ok=True)
    # 0600: a spec may hold a database URL with its password.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(dict(spec), handle, indent=2, sort_keys=True)
        handle.write("\n")
    return [sys.executable, "-m", f"{RUNNERS}.{runner}", str(path)]


def error_command(inv: StepInvocation[StepBase], message: str, exit_code: int = 1) -> list[str]:
    """A process that only reports ``message`` in the step's log and fails: for a mistake found
    while building the command (a path outside its datastore, a program not found), so that it
    reads like every other step failure rather than an internal error."""
    return spec_command(inv, "fail", {"error": message, "exit_code": exit_code})


# -- child side ------------------------------------------------------------------------------------


def load_spec(argv: list[str]) -> dict[str, Any]:
    if len(argv) != 2:
        raise SystemExit(f"usage: python -m {RUNNERS}.<type> SPEC.json")
    with open(argv[1], encoding="utf-8") as handle:
        spec = json.load(handle)
    if not isinstance(spec, dict):
        raise SystemExit(f"{argv[1]}: a spec must be a JSON object")
    # The file keeps secret references; their values came in $PIPESCHED_SECRETS.
    revealed: dict[str, Any] = reveal_from_environment(spec)
    return revealed


def say(text: str) -> None:
    """One line of the step's log (stdout is the log file: no buffering surprises)."""
    print(text, flush=True)


def run_main(body: Callable[[dict[str, Any]], None], argv: list[str] | None = None) -> None:
    """Run a runner's ``body(spec)``; a StepFailed becomes ``error: ...`` and its exit code."""
    spec = load_spec(sys.argv if argv is None else argv)
    try:
        body(spec)
    except StepFailed as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(exc.exit_code) from None
