"""Reports a mistake found while building a step's command, then fails (see ``error_command``)."""

from __future__ import annotations

from typing import Any

from scheduler.executor.runners import StepFailed, run_main


def _body(spec: dict[str, Any]) -> None:
    raise StepFailed(str(spec.get("error", "the step could not start")), spec.get("exit_code", 1))


def main() -> None:
    run_main(_body)


if __name__ == "__main__":
    main()
