"""``pipesched logs RUN_ID``: a step's combined stdout+stderr, like ``journalctl``/``tail``.

Logs are copied as bytes: a step may print anything, and decoding it only to encode it again
could fail on a byte that is not UTF-8.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import click

from scheduler.cli.options import config_option, load_config, open_store
from scheduler.cli.render import format_absolute
from scheduler.core.clock import SYSTEM_CLOCK
from scheduler.core.durations import parse_duration
from scheduler.services.logfiles import find_step, pick_attempt, tail
from scheduler.store.records import (
    FINISHED_RUN_STATUSES,
    FINISHED_STEP_STATUSES,
    RunDetail,
    StepAttempt,
)

if TYPE_CHECKING:
    from scheduler.store import Store

# -f polls the log file (and re-reads the store for the step's status) this often. Polling, not
# inotify: logs may live on a network filesystem, and a fifth of a second is quick enough for a
# human watching a log.
POLL_SECONDS = 0.2
SUCCESS = frozenset({"completed", "reused"})


@dataclass
class Source:
    """One attempt's log file and how far it has been printed."""

    step: str
    attempt: int
    path: Path | None
    offset: int = 0
    held: bytes = b""  # an unfinished line, held back while several logs interleave

    @property
    def key(self) -> tuple[str, int]:
        return (self.step, self.attempt)


@click.command()
@click.argument("run_id")
@click.option("--step", help="Step id or display name [default: every step, in start order].")
@click.option(
    "--attempt",
    type=click.IntRange(min=1),
    help="Attempt number (with --step) [default: the latest].",
)
@click.option(
    "-f",
    "--follow",
    is_flag=True,
    help="Keep printing while the step (or the run) runs; exit with its outcome. Ctrl-C detaches.",
)
@click.option(
    "-n", "--lines", type=click.IntRange(min=0), default=None, help="Only the last N lines."
)
@click.option(
    "--since",
    metavar="DURATION",
    help="Only logs written to in the last DURATION (e.g. 20m). Lines carry no times, so a "
    "log written to since then is shown whole.",
)
@config_option
def logs(
    run_id: str,
    step: str | None,
    attempt: int | None,
    follow: bool,
    lines: int | None,
    since: str | None,
    config_path: str | None,
) -> None:
    """A step's output (stdout and stderr), the latest attempt by default.

    RUN_ID may be any unique prefix of a run id."""
    if attempt is not None and step is None:
        raise click.UsageError("--attempt needs --step")
    try:
        since_seconds = parse_duration(since) if since else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    with open_store(load_config(config_path)) as store:
        code = print_logs(store, run_id, step, attempt, follow, lines, since_seconds)
    sys.exit(code)


def print_logs(
    store: Store,
    run_id: str,
    step: str | None,
    attempt: int | None,
    follow: bool,
    lines: int | None,
    since_seconds: float | None,
) -> int:
    """Print the asked logs (then follow them); return the command's exit code."""
    run_id = store.resolve_run_id(run_id)
    detail = store.get_run_detail(run_id)
    out = click.get_binary_stream("stdout")
    step = find_step(detail, step) if step else None
    sources = initial_sources(detail, step, attempt)
    if not follow and not any(_exists(s) for s in sources):
        return _no_log(detail, step, attempt)
    headers = step is None
    cutoff = time.time() - since_seconds if since_seconds is not None else None  # as file times
    last, printed = print_initial(sources, lines, out, headers=headers, cutoff=cutoff)
    if since_seconds is not None and not printed:
        moment = SYSTEM_CLOCK.now() - timedelta(seconds=since_seconds)
        click.echo(f"-- no output since {format_absolute(moment)} --", err=True)
    if not follow:
        return 0
    try:
        return follow_logs(store, run_id, step, attempt, sources, out, last=last, multi=headers)
    except KeyboardInterrupt:
        click.echo("\n(detached; the run goes on)", err=True)
        return 0


def initial_sources(detail: RunDetail, step: str | None, attempt: int | None) -> list[Source]:
    """What to print first: one attempt's log, or the latest log of every step in start order."""
    if step is not None:
        chosen = [pick_attempt(detail, step, attempt)]
    else:
        chosen = [pick_attempt(detail, name, None) for name in detail.latest_attempts()]
        chosen = sorted(
            (a for a in chosen if a.started_at is not None or a.log_path),
            key=lambda a: (a.started_at is None, a.started_at),
        )
    return [_source(a) for a in chosen]


def print_initial(
    sources: list[Source],
    lines: int | None,
    out: BinaryIO,
    *,
    headers: bool,
    cutoff: float | None = None,
) -> tuple[tuple[str, int] | None, bool]:
    """Print each log (its last ``lines`` lines when given; none untouched since ``cutoff``);
    return the key printed last and whether anything was printed."""
    last: tuple[str, int] | None = None
    printed = False
    for source in sources:
        if not _exists(source):
            continue
        stat = source.path.stat()
        if cutoff is not None and stat.st_mtime < cutoff:
            source.offset = stat.st_size  # -f goes on from its end
            continue
        data, source.offset = tail(source.path, lines)
        printed = True
        if headers:
            _header(out, source, first=last is None)
            if data and not data.endswith(b"\n"):
                data += b"\n"  # the next header starts on its own line
        out.write(data)
        last = source.key
    out.flush()
    if not headers and sources:
        last = sources[0].key
    return last, printed


def follow_logs(
    store: Store,
    run_id: str,
    step: str | None,
    attempt: int | None,
    sources: list[Source],
    out: BinaryIO,
    *,
    last: tuple[str, int] | None,
    multi: bool,
) -> int:
    """Print what the followed logs gain until the step (or, without --step, the run) ends;
    return the exit code of its outcome: 0 completed (or reused), 1 otherwise."""
    known = {s.key: s for s in sources}
    while True:
        # The status is read before the files: the executor records an ending only after the
        # process has exited, so a final read after seeing the end misses nothing.
        detail = store.get_run_detail(run_id)
        for current in _followed(detail, step, attempt):
            known.setdefault((current.step, current.attempt), _source(current))
            source = known[(current.step, current.attempt)]
            source.path = source.path or _source(current).path
        outcome = _outcome(detail, step, attempt)
        for source in known.values():
            data = _read_new(source, whole_lines=multi and outcome is None)
            if not data:
                continue
            if source.key != last:
                _header(out, source, first=last is None)
                last = source.key
            out.write(data)
        out.flush()
        if outcome is not None:
            return outcome
        time.sleep(POLL_SECONDS)


def _followed(detail: RunDetail, step: str | None, attempt: int | None) -> Iterable[StepAttempt]:
    if step is not None:
        return [pick_attempt(detail, step, attempt)]
    latest = (pick_attempt(detail, name, None) for name in detail.latest_attempts())
    return [a for a in latest if a.log_path]


def _outcome(detail: RunDetail, step: str | None, attempt: int | None) -> int | None:
    """None while still running; else the exit code of what was followed."""
    run_over = detail.run.status in FINISHED_RUN_STATUSES
    if step is None:
        return (0 if detail.run.status == "completed" else 1) if run_over else None
    current = pick_attempt(detail, step, attempt)
    # A failed latest attempt may be followed by a retry, and the store does not say whether
    # one is coming: follow on until the run ends (a failure usually ends it soon) — unless a
    # given --attempt was asked for, which no retry continues.
    retry_possible = attempt is None and current.status == "failed"
    if run_over or (current.status in FINISHED_STEP_STATUSES and not retry_possible):
        return 0 if current.status in SUCCESS else 1
    return None


def _read_new(source: Source, *, whole_lines: bool) -> bytes:
    if not _exists(source):
        return b""
    with source.path.open("rb") as handle:
        handle.seek(source.offset)
        data = handle.read()
    source.offset += len(data)
    data, source.held = source.held + data, b""
    if whole_lines and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        data, source.held = data[:cut], data[cut:]
    return data


def _header(out: BinaryIO, source: Source, *, first: bool) -> None:
    prefix = b"" if first else b"\n"
    out.write(prefix + f"==> {source.step} (attempt {source.attempt}) <==\n".encode())


def _source(attempt: StepAttempt) -> Source:
    path = Path(attempt.log_path) if attempt.log_path else None
    return Source(attempt.step, attempt.attempt, path)


def _exists(source: Source) -> bool:
    return source.path is not None and source.path.is_file()


def _no_log(detail: RunDetail, step: str | None, attempt: int | None) -> int:
    if step is None:
        click.echo(
            f"error: run {detail.run.id} has no step logs yet ({detail.run.status})", err=True
        )
    else:
        chosen = pick_attempt(detail, step, attempt)
        click.echo(
            f"error: step {step!r} (attempt {chosen.attempt}) has no log yet ({chosen.status})",
            err=True,
        )
    return 1
