"""What a parallel_run step on Dask runs inside the Dask worker processes (``dask_pool.py``
sends them): the entry script loaded and ``init()``-ed once per worker process and attempt,
then ``run()`` over the mini-batches of each task, with a progress event per mini-batch."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

from scheduler.executor.parallel.worker import (
    call_init,
    call_run,
    error_text,
    load_entry,
    prepare_batch,
    result_count,
    tables_module,
    to_rows,
)

KEEP_ENTRIES = 4  # loaded entry scripts a worker process keeps (one per recent attempt)

_ENTRIES: dict[str, tuple[ModuleType, str]] = {}  # run_key -> (module, log path)
_LOCK = threading.Lock()


def init_worker(payload: dict[str, Any]) -> dict[str, Any]:
    try:
        if payload.get("tabular") is not None:  # a clear error when pandas is missing
            tables_module().pandas_module(payload["tabular"], " (on the Dask workers)")
        _, log = _entry(payload)
    except BaseException as exc:
        return {"init_error": error_text(exc), "log": _log_path(payload)}
    return {"pid": os.getpid(), "log": log}


def run_batches(
    payload: dict[str, Any],
    batches: list[tuple[list[Any], dict[str, str] | None]],
    progress: str | None = None,
    key: str = "",
) -> list[dict[str, Any]]:
    """Run a chunk of mini-batches: one reply each. With ``progress`` (a topic), log an event
    as each one but the last finishes, so the driver times each run() on its own."""
    try:
        module, log = _entry(payload)
    except BaseException as exc:
        return [{"ok": False, "error": f"init() failed: {error_text(exc)}"} for _ in batches]
    report: Callable[[int], None] | None = None
    if progress is not None:
        from distributed import get_worker

        worker, topic = get_worker(), progress

        def report(done: int) -> None:
            worker.log_event(topic, {"task": key, "done": done})

    replies = []
    with _inside(payload, log):
        for position, (items, partition) in enumerate(batches, 1):
            sys.argv = [payload["entry_script"], *payload["arguments"]]
            replies.append(_run_one(module, payload, items, partition))
            if report is not None and position < len(batches):
                report(position)
    return replies


def _run_one(
    module: ModuleType, payload: dict[str, Any], items: list[Any], partition: dict[str, str] | None
) -> dict[str, Any]:
    reply: dict[str, Any] = {}
    try:
        mini_batch, context = prepare_batch(items, partition, payload)
        if payload.get("tabular") is not None:
            reply["items"] = len(mini_batch)
        result = call_run(module, mini_batch, context)
        reply.update(ok=True, count=result_count(result))
        if payload["append_row"]:
            reply["rows"] = to_rows(result)
        return reply
    except BaseException as exc:
        import traceback

        traceback.print_exc()
        return {**reply, "ok": False, "error": error_text(exc)}


def _entry(payload: dict[str, Any]) -> tuple[ModuleType, str]:
    key = payload["run_key"]
    with _LOCK:
        if key not in _ENTRIES:
            log = _log_path(payload)
            with _inside(payload, log):
                print(f"[pipesched] pid {os.getpid()}: importing {payload['entry_script']}")
                module = load_entry(payload["entry_script"], list(payload["arguments"]))
                call_init(module)
                print("[pipesched] init() done", flush=True)
            while len(_ENTRIES) >= KEEP_ENTRIES:
                _ENTRIES.pop(next(iter(_ENTRIES)))
            _ENTRIES[key] = (module, log)
        return _ENTRIES[key]


def _log_path(payload: dict[str, Any]) -> str:
    try:
        from distributed import get_worker

        name = str(get_worker().name)
    except (ImportError, ValueError):
        name = "worker"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return os.path.join(payload["workers_dir"], f"dask-{safe}-{os.getpid()}.log")


@contextlib.contextmanager
def _inside(payload: dict[str, Any], log: str) -> Iterator[None]:
    """The process-wide state the entry script expects, for the length of one call."""
    saved_env = {key: os.environ.get(key) for key in payload["env"]}
    saved_cwd = os.getcwd()
    os.environ.update(payload["env"])
    sys.argv = [payload["entry_script"], *payload["arguments"]]
    os.chdir(payload["workdir"])
    with (
        open(log, "a", buffering=1) as out,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(out),
    ):
        try:
            yield
        finally:
            os.chdir(saved_cwd)
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def kill_self() -> None:
    """Runs on the worker's event loop (not in the hung thread): ends the process at once."""
    os.kill(os.getpid(), signal.SIGKILL)
