"""``pipesched run NAME`` of a compiled plan (``scheduler.definitions.compiled``): the lean path,
which loads neither click nor the definitions, the full store or structlog before the first step
starts. ``scheduler.cli.main`` comes here first for a plain ``run NAME [--json]``; the click
command (``cmd_run``) comes here too, for the same run reached another way. What it prints is
what the click command prints, written straight to the streams."""

from __future__ import annotations

import atexit
import contextlib
import importlib
import io
import json
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from scheduler.core.clock import SYSTEM_CLOCK
from scheduler.core.durations import format_duration
from scheduler.core.errors import PipeschedError
from scheduler.definitions.compiled import config_request, load_plan

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

    from scheduler.executor.events import StepEvent
    from scheduler.store.records import RunDetail


def run_plain(config_path: str | None, pipeline: str, as_json: bool) -> None:
    """Run the compiled plan of ``pipeline`` and exit with its outcome, as ``pipesched run``
    does; returns, with nothing recorded, when there is no current plan to run."""
    keep_running_when_output_closes()  # before anything else takes hold of stderr
    try:
        ended = run_compiled(config_request(config_path), pipeline, None, False)
    except KeyboardInterrupt:  # before the run was recorded: as click reports it
        say("")
        say("Aborted.")
        sys.exit(130)
    except PipeschedError as exc:
        from scheduler.cli import with_causes  # lazy: the package, loaded already

        say(f"error: {with_causes(exc)}")
        sys.exit(1)
    if ended is not None:
        detail, status, canceled = ended
        report(detail, as_json, status, canceled, quick_exit=True)


def watch_children_by_pidfd() -> None:
    """Python 3.11's asyncio waits for each child process in a thread of its own, started with
    every step and handing its exit over to the loop: a cost per step. A pidfd in the loop's
    selector costs no thread (Linux 5.3 and later); Python 3.12 and later choose it themselves."""
    if sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open"):
        return
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:  # a kernel without pidfds: the threads it is
        return
    import asyncio  # lazy: loaded by the executor already; only named here

    asyncio.set_child_watcher(asyncio.PidfdChildWatcher())


def say(line: str) -> None:
    """One line on stderr, at once (as ``click.echo(..., err=True)``)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


class Warmup:
    """Imports the modules that print a run's outcome in a thread while its first step runs: the
    process waits on its steps then, and the import would otherwise come after the last one.
    Joined before the outcome is read, and before the rare import of the full store during a
    run (a model to record), so no two threads import modules of the store at once."""

    MODULES = ("scheduler.store.sqlite_reads", "scheduler.cli.cmd_show")

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pipesched-warmup", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for name in self.MODULES:
            with contextlib.suppress(Exception):  # shows again when the main thread imports it
                importlib.import_module(name)

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()


def run_compiled(
    request: list[str | None], pipeline: str, experiment: str | None, regenerate_outputs: bool
) -> tuple[RunDetail, str, bool] | None:
    """The lean path: run the cached plan of ``pipeline`` (its default parameters) without
    loading the definitions, the full store or structlog. None, with nothing recorded, when there
    is no current plan or its database needs the full store (to be created or migrated)."""
    # lazy: the lean path's own modules, light by design
    from scheduler.compute.reaper import become_subreaper
    from scheduler.dispatch.freespace import LowFreeSpace, free_space_problem_at
    from scheduler.executor import express
    from scheduler.executor.foreground import execute_in_foreground, note_cancel_signals
    from scheduler.executor.warmpool import ensure_foreground_pool
    from scheduler.store.lean_writes import LeanRunWriter, LeanStoreRefused

    plan = load_plan(request, pipeline)
    if plan is None:
        return None
    config = plan["config"]
    problem = free_space_problem_at(Path(config["state_dir"]), config["min_free_space"])
    if problem is not None:
        raise LowFreeSpace(
            problem,
            hint=f"free space on {config['state_dir']}, or lower min_free_space in {config['file']}",
        )
    try:
        writer = LeanRunWriter(config["database"], plan["schema_revision"])
    except LeanStoreRefused:
        return None
    # The writer's connection stays open until the process ends: closing the last connection to
    # the database checkpoints its WAL there and then, which the next writer or the WAL's own
    # automatic checkpoint does anyway.
    warmup = Warmup()
    try:
        hashes = express.source_hashes(plan)
        early = note_cancel_signals()
        run = express.record_run(plan, writer, experiment, hashes)
        say(f"run {run.id} of {plan['pipeline']['name']} started")
        executor = express.ExpressExecutor(
            plan,
            writer,
            run,
            source_hashes=hashes,
            regenerate_outputs=regenerate_outputs,
            on_event=ProgressPrinter(run.id),
            on_first_spawn=warmup.start,
            before_lazy_import=warmup.join,
        )
        become_subreaper()  # what a step leaves behind stays below us, to be killed and reaped
        watch_children_by_pidfd()
        ensure_foreground_pool(
            config.get("warm_imports") or {},
            [(s["type"], s["compute"], s.get("warm", True), s["python"]) for s in plan["steps"]],
            Path(config["state_dir"]),
        )
        status = execute_in_foreground(executor, early)
    finally:
        warmup.join()
    from scheduler.store.sqlite_reads import SqliteReads  # lazy: warmed up while steps ran

    reads = SqliteReads.open(f"sqlite:///{config['database']}")
    if reads is None:  # the schema moved under us: read it the full way
        return (
            _detail_from_store(f"sqlite:///{config['database']}", run.id),
            status,
            executor.canceled,
        )
    with reads:
        return reads.get_run_detail(run.id), status, executor.canceled


def _detail_from_store(url: str, run_id: str) -> RunDetail:
    from scheduler.store.store import Store  # lazy: the full store, for a schema we cannot read

    with Store.open(url) as store:
        return store.get_run_detail(run_id)


def report(
    detail: RunDetail, as_json: bool, status: str, canceled: bool, *, quick_exit: bool = False
) -> None:
    """Print the run as ``show`` does (or its JSON) and exit with its outcome. ``quick_exit``:
    once the output is flushed and the exit handlers (the reaper's sweep of leftover processes)
    have run, end the process without the interpreter's teardown, which frees every module one
    by one for tens of milliseconds and does nothing else."""
    if as_json:
        sys.stdout.write(json.dumps(detail.to_json(), indent=2) + "\n")
        sys.stdout.flush()
    else:
        from scheduler.cli.cmd_show import render_detail  # lazy: the text page only

        render_detail(detail, SYSTEM_CLOCK.now())
    code = 0 if status == "completed" else 130 if canceled else 1
    if quick_exit:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


class ProgressPrinter:
    """One line per step event on stderr, like a build tool."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    def __call__(self, event: StepEvent) -> None:
        took = f" in {format_duration(event.duration)}" if event.duration is not None else ""
        attempt = f" (attempt {event.attempt})" if event.attempt > 1 else ""
        detail = f": {event.detail}" if event.detail else ""
        say(f"  {event.step:<20} {event.status}{attempt}{took}{detail}")


class _OutputFd(io.RawIOBase):
    """Standard output or error whose reader may go away: once a write fails (EPIPE when the
    pipe's reader exited, EIO when the terminal hung up), the descriptor is pointed at
    /dev/null, so this write and every later one — ours, a library's, the interpreter's last
    flush — succeeds unprinted instead of raising in the middle of the run."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:
        return os.isatty(self._fd)

    def write(self, data: ReadableBuffer) -> int:
        view = memoryview(data)
        try:
            return os.write(self._fd, view)
        except BlockingIOError:
            raise
        except OSError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._fd)
            os.close(devnull)
            return view.nbytes


def keep_running_when_output_closes() -> None:
    """Replace ``sys.stdout`` and ``sys.stderr`` by streams over ``_OutputFd``: a reader that
    goes away stops the printing, never the run. Streams that are not file descriptors (a test
    runner's capture) are left alone."""
    sys.stdout = _guarded(sys.stdout)
    sys.stderr = _guarded(sys.stderr)


def _guarded(stream: TextIO) -> TextIO:
    if isinstance(getattr(getattr(stream, "buffer", None), "raw", None), _OutputFd):
        return stream  # guarded already (the lean path came first, and found no plan)
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return stream
    stream.flush()
    return io.TextIOWrapper(
        io.BufferedWriter(_OutputFd(fd)),
        encoding=stream.encoding,
        errors=stream.errors,
        line_buffering=bool(stream.line_buffering),
    )
