"""``pipesched run``: run a pipeline now, in the foreground, recording history like any run."""

from __future__ import annotations

import atexit
import contextlib
import importlib
import io
import json
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from scheduler.cli.options import (
    complete_pipeline,
    config_option,
    find_config_path,
    json_option,
    open_store,
    requested_config_path,
)
from scheduler.core.clock import SYSTEM_CLOCK
from scheduler.core.durations import format_duration
from scheduler.definitions.compiled import (
    compile_plan,
    config_request,
    forget_plan,
    load_plan,
    save_plan,
)

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

    from scheduler.definitions.config import Config
    from scheduler.definitions.pipeline import Pipeline
    from scheduler.executor.events import StepEvent
    from scheduler.store.records import RunDetail


def _parse_assignments(pairs: Sequence[str]) -> dict[str, str]:
    given: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint="-p")
        given[name.strip()] = value
    return given


@click.command()
@click.argument("pipeline", shell_complete=complete_pipeline)
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Set a pipeline parameter (repeatable). Checked before any run is recorded.",
)
@click.option(
    "--experiment", help="Record the run under this experiment (default: the pipeline's)."
)
@click.option("--regenerate-outputs", is_flag=True, help="Run every step; reuse no earlier output.")
@json_option
@config_option
def run(
    pipeline: str,
    params: tuple[str, ...],
    experiment: str | None,
    regenerate_outputs: bool,
    as_json: bool,
    config_path: str | None,
) -> None:
    """Run PIPELINE now and wait for it; exit 0 only when it completed.

    Progress goes to stderr; the summary (or with --json one JSON document, whatever the outcome)
    to stdout. Ctrl-C cancels the run, stops its steps and records it as canceled; so does a
    terminal that hangs up (SIGHUP). Output that nobody reads any more (`| head`) is dropped:
    the run goes on to its end and the exit status is still its outcome.

    \b
    Example:
      pipesched run diabetes-training -p reg_rate=0.1
    """
    keep_running_when_output_closes()  # before logging takes hold of stderr
    given = _parse_assignments(params)
    request = config_request(requested_config_path(config_path))
    if not given:
        ended = _run_compiled(request, pipeline, experiment, regenerate_outputs)
        if ended is not None:
            detail, status, canceled = ended
            _report(detail, as_json, status, canceled, quick_exit=True)
    _run_loaded(
        request,
        find_config_path(config_path),
        pipeline,
        given,
        experiment,
        regenerate_outputs,
        as_json,
    )


class _Warmup:
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


def _run_compiled(
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
    warmup = _Warmup()
    try:
        hashes = express.source_hashes(plan)
        early = note_cancel_signals()
        run = express.record_run(plan, writer, experiment, hashes)
        click.echo(f"run {run.id} of {plan['pipeline']['name']} started", err=True)
        executor = express.ExpressExecutor(
            plan,
            writer,
            run,
            source_hashes=hashes,
            regenerate_outputs=regenerate_outputs,
            on_event=_ProgressPrinter(run.id),
            on_first_spawn=warmup.start,
            before_lazy_import=warmup.join,
        )
        become_subreaper()  # what a step leaves behind stays below us, to be killed and reaped
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


def _run_loaded(
    request: list[str | None],
    config_file: Path,
    pipeline: str,
    given: dict[str, str],
    experiment: str | None,
    regenerate_outputs: bool,
    as_json: bool,
) -> None:
    """The full path: load and validate the definitions, record and execute through the store;
    and compile the pipeline's plan for the next run."""
    # lazy: the full path's imports, which the lean path never pays for
    from scheduler.core.logging import configure_logging
    from scheduler.definitions.config import load_config
    from scheduler.definitions.discovery import find_pipeline
    from scheduler.definitions.pipeline_loader import load_pipeline
    from scheduler.services.submit import (
        execute_foreground,
        note_cancel_signals,
        record_foreground_run,
    )

    configure_logging(level="warning")
    config = load_config(config_file)
    pipeline_file = find_pipeline(pipeline, config)
    definition = load_pipeline(pipeline_file, config)
    store = open_store(config)
    _compile(request, pipeline, config, definition, pipeline_file)
    # From the moment the run is recorded, Ctrl-C, SIGTERM or SIGHUP must cancel it, not kill
    # us: note the signal until the event loop's handlers take over.
    early = note_cancel_signals()
    record = record_foreground_run(config, store, definition, given, experiment=experiment)
    click.echo(f"run {record.id} of {definition.name} started", err=True)
    outcome = execute_foreground(
        config,
        store,
        definition,
        record,
        early,
        regenerate_outputs=regenerate_outputs,
        on_event=_ProgressPrinter(record.id),
    )
    _report(store.get_run_detail(record.id), as_json, outcome.status, outcome.canceled)


def _compile(
    request: list[str | None],
    pipeline: str,
    config: Config,
    definition: Pipeline,
    pipeline_file: Path,
) -> None:
    """Cache the plan of ``definition`` for the next ``pipesched run`` of it (or forget a plan
    the lean path cannot run)."""
    from scheduler.store.migrate import HEAD_REVISION  # lazy: the full path has loaded the store

    plan = compile_plan(config, definition, pipeline_file, schema_revision=HEAD_REVISION)
    if plan is None:
        forget_plan(request, pipeline)
    else:
        save_plan(request, pipeline, plan)


def _report(
    detail: RunDetail, as_json: bool, status: str, canceled: bool, *, quick_exit: bool = False
) -> None:
    """Print the run as ``show`` does (or its JSON) and exit with its outcome. ``quick_exit``:
    once the output is flushed and the exit handlers (the reaper's sweep of leftover processes)
    have run, end the process without the interpreter's teardown, which frees every module one
    by one for tens of milliseconds and does nothing else."""
    if as_json:
        click.echo(json.dumps(detail.to_json(), indent=2))
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


class _ProgressPrinter:
    """One line per step event on stderr, like a build tool."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    def __call__(self, event: StepEvent) -> None:
        took = f" in {format_duration(event.duration)}" if event.duration is not None else ""
        attempt = f" (attempt {event.attempt})" if event.attempt > 1 else ""
        detail = f": {event.detail}" if event.detail else ""
        click.echo(f"  {event.step:<20} {event.status}{attempt}{took}{detail}", err=True)


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
