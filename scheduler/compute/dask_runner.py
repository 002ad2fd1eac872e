"""A ``python_script`` or ``command`` step on a Dask worker.

The step's local process is ``python -m scheduler.compute.dask_runner <spec.json>``; the executor
times, cancels and logs it like any step. It checks that the worker sees the datastores, copies
the source into the (datastore) working directory, submits one task that runs the step's argv as
a subprocess on a worker, with its output appended to ``<attempt>.remote.log`` beside the working
directory, and copies that file's new bytes into its own output (the attempt's log) as they come.
It exits with the remote process's exit status (re-raising its signal, so the step shows
"killed by SIGKILL" as a local step would).

Stopping: when the local process gets SIGTERM or SIGINT (timeout, cancel, shutdown) it cancels
the task; when it dies outright (SIGKILL), the scheduler drops its task with the client. Either
way the task's state on the worker leaves ``executing``: the remote wrapper sees that within
``POLL`` seconds and stops the remote process group (SIGTERM, SIGKILL ``KILL_GRACE`` later).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scheduler.compute import dask as dask_target
from scheduler.core.errors import PipeschedError
from scheduler.core.secrets import reveal_from_environment

if TYPE_CHECKING:  # the dask extra: imported once a step connects to a cluster
    from distributed import Future

WORKER_PYTHON = "{worker_python}"  # argv[0] placeholder: the worker's own interpreter
POLL = 0.1
KILL_GRACE = 3.0
PREFIX = "[pipesched]"


# ---- the local side ---------------------------------------------------------------------------


def say(text: str) -> None:
    print(f"{PREFIX} {text}", flush=True)


class Tail:
    """Copies what the remote process appends to its log into our stdout."""

    def __init__(self, path: str) -> None:
        self.path, self.offset = path, 0

    def pump(self) -> None:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return
        if data:
            self.offset += len(data)
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()


async def run_spec(spec: dict[str, Any]) -> int:
    client = await dask_target.connect(spec["address"])
    try:
        workers = await dask_target.workers_of(client)
        if not workers:
            raise dask_target.NoWorkers(f"the Dask cluster at {spec['address']} has no workers")
        roots = dask_target.roots_touched(spec["datastores"], [spec["workdir"], *spec["argv"]])
        await dask_target.check_shared(client, roots)
        await asyncio.to_thread(
            dask_target.materialize_workdir, Path(spec["workdir"]), Path(spec["source_directory"])
        )
        env = dask_target.forwarded_environment(spec["environment"])
        future = client.submit(
            run_remote, spec["argv"], spec["workdir"], env, spec["log"], key=spec["key"], pure=False
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        tail = Tail(spec["log"])
        waiter = asyncio.ensure_future(_result(future))
        stopper = asyncio.ensure_future(stop.wait())
        while not waiter.done() and not stop.is_set():
            await asyncio.wait([waiter, stopper], timeout=POLL, return_when="FIRST_COMPLETED")
            tail.pump()
        if stop.is_set() and not waiter.done():
            say("stopping: canceling the task on the Dask worker")
            await client.cancel([future])
            waiter.cancel()
            return -signal.SIGTERM
        stopper.cancel()
        try:
            code = await waiter
        except Exception as exc:  # the worker died, or the task could not run
            tail.pump()
            say(f"error: the task on the Dask worker failed: {exc!r}")
            return 1
        tail.pump()
        return int(code)
    finally:
        await client.close()


async def _result(future: Future[int]) -> int:
    return await future


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    # The file keeps secret references; their values came in $PIPESCHED_SECRETS.
    spec = reveal_from_environment(json.loads(Path(args[0]).read_text()))
    try:
        code = asyncio.run(run_spec(spec))
    except PipeschedError as exc:
        say(f"error: {exc}")
        return 1
    if code < 0:  # end the way the remote process ended, so the step's reason names the signal
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


# ---- the remote side (runs inside a Dask worker process) ---------------------------------------


def run_remote(argv: list[str], cwd: str, env: dict[str, str], log: str) -> int:
    """Run ``argv`` in its own process group on this worker until it ends or the task is
    canceled; its output goes to ``log`` (on a datastore)."""
    if argv and argv[0] == WORKER_PYTHON:
        argv = [sys.executable, *argv[1:]]
    still_wanted = _task_watch()
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    try:
        _note(fd, f"running on Dask worker {_worker_name()} (host {os.uname().nodename})")
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env={**os.environ, **env},
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=fd,
                start_new_session=True,  # a group of its own, so a stop reaches its children
            )
        except OSError as exc:
            _note(fd, f"cannot start {argv[0]}: {exc}")
            return 127
        try:
            while True:
                try:
                    return proc.wait(timeout=POLL)
                except subprocess.TimeoutExpired:
                    pass
                if not still_wanted():
                    _note(fd, f"task canceled: stopping process group {proc.pid}")
                    _killpg(proc.pid, signal.SIGTERM)
                    try:
                        return proc.wait(timeout=KILL_GRACE)
                    except subprocess.TimeoutExpired:
                        _killpg(proc.pid, signal.SIGKILL)
                        return proc.wait()
        finally:
            _killpg(proc.pid, signal.SIGKILL)  # leftovers of the group
    finally:
        os.close(fd)


def _task_watch() -> Callable[[], bool]:
    """A function telling whether this task is still wanted by a client. The worker keeps
    running a canceled task's thread but moves its state out of ``executing``."""
    try:
        from distributed import get_worker
        from distributed.worker import thread_state

        worker, key = get_worker(), thread_state.key
    except (ImportError, ValueError, AttributeError):
        return lambda: True

    def still_wanted() -> bool:
        task = worker.state.tasks.get(key)
        return task is not None and task.state in ("executing", "long-running")

    return still_wanted


def _worker_name() -> str:
    try:
        from distributed import get_worker

        worker = get_worker()
        return f"{worker.name} ({worker.address})"
    except (ImportError, ValueError):
        return "?"


def _note(fd: int, text: str) -> None:
    os.write(fd, f"{PREFIX} {text}\n".encode())


def _killpg(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


if __name__ == "__main__":
    sys.exit(main())
