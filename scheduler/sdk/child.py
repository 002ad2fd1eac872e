"""The process an embedded ``Experiment.submit`` starts: record the run, say its id, run it.

``python -m scheduler.sdk.child '<request JSON>'`` with ``config``, then either ``snapshot`` (a
stored SDK pipeline folder) or ``pipeline`` + ``version`` (a published one; version None: the
endpoint's default), and ``experiment``, ``parameters``, ``regenerate_outputs``,
``continue_on_step_failure``.

The first stdout line is ``{"run_id": ...}`` once the run is recorded, or ``{"error": {...}}``
when the request is refused (nothing recorded). From then on stdout and stderr go to
``<state_dir>/runs/<run>/sdk-child.log`` and the run executes exactly as ``pipesched run`` does:
this process owns it, and SIGINT/SIGTERM cancel it (``scheduler.services.cancel`` sends SIGINT).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any

LOG_NAME = "sdk-child.log"


def main(argv: list[str]) -> int:
    request = json.loads(argv[0])
    early: list[str] = []
    # From the moment the run is recorded, a signal must cancel it, not kill us (as cmd_run).
    signal.signal(signal.SIGINT, lambda *_: early.append("canceled by user"))
    signal.signal(signal.SIGTERM, lambda *_: early.append("terminated"))
    try:
        config, store, pipeline, record = _submit(request)
    except Exception as exc:  # every refusal is reported on stdout; a bug keeps its traceback
        from scheduler.core.errors import PipeschedError

        if not isinstance(exc, PipeschedError):
            raise
        _say({"error": _error_json(exc)}, os.dup(1))
        return 1
    _redirect_output(config.runs_dir / record.id, record.id)
    return _execute(config, store, pipeline, record, request, early)


def _submit(request: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    from scheduler.core.procinfo import current_owner
    from scheduler.definitions.config import load_config
    from scheduler.dispatch.submit import submit_run
    from scheduler.store import Store

    config = load_config(request["config"])
    store = Store.open(config.database_url)
    version = None
    if request.get("snapshot"):
        from scheduler.services.snapshots import load_snapshot_by_id

        pipeline = load_snapshot_by_id(config, request["snapshot"])
    else:
        from scheduler.services.publish import load_published

        pipeline, version = load_published(
            config, store, request["pipeline"], request.get("version")
        )
    if request.get("continue_on_step_failure") is not None:
        pipeline = pipeline.model_copy(
            update={"continue_on_step_failure": request["continue_on_step_failure"]}
        )
    record = submit_run(
        config,
        store,
        pipeline,
        request.get("parameters") or {},
        experiment=request.get("experiment"),
        owner=current_owner(),
        version=version,
    )
    return config, store, pipeline, record


def _redirect_output(run_dir: Any, run_id: str) -> None:
    """Say the run id on the real stdout, after stdout and stderr have moved to the run's log:
    the parent reads one line and then sees both pipes end."""
    run_dir.mkdir(parents=True, exist_ok=True)
    log = os.open(run_dir / LOG_NAME, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    answer = os.dup(1)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    _say({"run_id": run_id}, answer)


def _say(data: dict[str, Any], fd: int) -> None:
    """One JSON line to the parent. A parent gone meanwhile (a notebook kernel killed) must not
    stop the recorded run: the run goes on and is read back from the store."""
    try:
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(data) + "\n")
            out.flush()
    except BrokenPipeError:
        pass


def _error_json(exc: Exception) -> dict[str, Any]:
    from scheduler.core.errors import DefinitionErrors, ParameterError, PipeschedError

    assert isinstance(exc, PipeschedError)
    data: dict[str, Any] = {"type": type(exc).__name__, "message": exc.message, "hint": exc.hint}
    if isinstance(exc, ParameterError):
        data["name"] = exc.name
    if isinstance(exc, DefinitionErrors):
        data["text"] = str(exc)
    return data


def _execute(
    config: Any, store: Any, pipeline: Any, record: Any, request: dict, early: list[str]
) -> int:
    from scheduler.core.logging import configure_logging
    from scheduler.executor import ExecutionOptions, RunExecutor
    from scheduler.executor.foreground import execute_in_foreground

    configure_logging(level="warning")
    print(f"run {record.id} of {pipeline.name} started", file=sys.stderr, flush=True)
    executor = RunExecutor(
        config=config,
        store=store,
        pipeline=pipeline,
        run=record,
        options=ExecutionOptions(regenerate_outputs=bool(request.get("regenerate_outputs"))),
        on_event=lambda event: print(
            f"  {event.step:<20} {event.status}", file=sys.stderr, flush=True
        ),
    )
    status = execute_in_foreground(executor, early)
    print(f"run {record.id} {status}", file=sys.stderr, flush=True)
    return 0 if status == "completed" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
