"""``pipesched run``: run a pipeline now, in the foreground, recording history like any run."""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

import click

from scheduler.cli.cmd_show import render_detail
from scheduler.cli.options import (
    complete_pipeline,
    config_option,
    json_option,
    load_config,
    open_store,
)
from scheduler.core.clock import SYSTEM_CLOCK
from scheduler.core.durations import format_duration
from scheduler.core.logging import configure_logging
from scheduler.services.submit import (
    execute_foreground,
    note_cancel_signals,
    record_foreground_run,
    working_copy,
)

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

    from scheduler.executor import StepEvent


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
    configure_logging(level="warning")
    given = _parse_assignments(params)
    config = load_config(config_path)
    definition = working_copy(config, pipeline)
    store = open_store(config)
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
    detail = store.get_run_detail(record.id)
    if as_json:
        click.echo(json.dumps(detail.to_json(), indent=2))
    else:
        render_detail(detail, SYSTEM_CLOCK.now())
    sys.exit(0 if outcome.status == "completed" else 130 if outcome.canceled else 1)


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
