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
from pathlib import Path
from typing import Any

from scheduler.core.errors import DefinitionErrors, ParameterError, PipeschedError
from scheduler.core.logging import configure_logging
from scheduler.definitions import Pipeline
from scheduler.definitions.config import Config, load_config
from scheduler.services.submit import execute_foreground, load_definition, record_foreground_run
from scheduler.store import Store
from scheduler.store.records import RunRecord

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
        if not isinstance(exc, PipeschedError):
            raise
        _say({"error": _error_json(exc)}, os.dup(1))
        return 1
    _redirect_output(config.runs_dir / record.id, record.id)
    return _execute(config, store, pipeline, record, request, early)


def _submit(request: dict[str, Any]) -> tuple[Config, Store, Pipeline, RunRecord]:
    config = load_config(request["config"])
    store = Store.open(config.database_url)
    pipeline, version = load_definition(
        config,
        store,
        pipeline=request.get("pipeline"),
        version=request.get("version"),
        snapshot=request.get("snapshot"),
        continue_on_step_failure=request.get("continue_on_step_failure"),
    )
    record = record_foreground_run(
        config,
        store,
        pipeline,
        request.get("parameters") or {},
        experiment=request.get("experiment"),
        version=version,
    )
    return config, store, pipeline, record


def _redirect_output(run_dir: Path, run_id: str) -> None:
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
    assert isinstance(exc, PipeschedError)
    data: dict[str, Any] = {"type": type(exc).__name__, "message": exc.message, "hint": exc.hint}
    if isinstance(exc, ParameterError):
        data["name"] = exc.name
    if isinstance(exc, DefinitionErrors):
        data["text"] = str(exc)
    return data


def _execute(
    config: Config,
    store: Store,
    pipeline: Pipeline,
    record: RunRecord,
    request: dict[str, Any],
    early: list[str],
) -> int:
    configure_logging(level="warning")
    print(f"run {record.id} of {pipeline.name} started", file=sys.stderr, flush=True)
    outcome = execute_foreground(
        config,
        store,
        pipeline,
        record,
        early,
        regenerate_outputs=bool(request.get("regenerate_outputs")),
        on_event=lambda event: print(
            f"  {event.step:<20} {event.status}", file=sys.stderr, flush=True
        ),
    )
    print(f"run {record.id} {outcome.status}", file=sys.stderr, flush=True)
    return 0 if outcome.status == "completed" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
