"""``pipesched logs RUN_ID``: a step's combined stdout+stderr, like ``journalctl``/``tail``.

Logs are copied as bytes: a step may print anything, and decoding it only to encode it again
could fail on a byte that is not UTF-8.
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from typing import TYPE_CHECKING, BinaryIO

import click

from scheduler.cli.options import (
    complete_pipeline,
    complete_run_id,
    complete_step,
    config_option,
)
from scheduler.cli.reads import open_reads, read_config, remote_daemon, url_option
from scheduler.cli.render import format_absolute
from scheduler.core.clock import SYSTEM_CLOCK
from scheduler.core.durations import parse_duration
from scheduler.services.logs import LogSource, StepLogs, open_logs, pick_attempt

if TYPE_CHECKING:
    from scheduler.store.reads import HistoryReads


@click.command()
@click.argument("run_id", shell_complete=complete_run_id)
@click.option(
    "--pipeline",
    help="With `latest`: the newest run of this pipeline.",
    shell_complete=complete_pipeline,
)
@click.option(
    "--step",
    help="Step id or display name [default: every step, in start order].",
    shell_complete=complete_step,
)
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
@url_option
def logs(
    run_id: str,
    pipeline: str | None,
    step: str | None,
    attempt: int | None,
    follow: bool,
    lines: int | None,
    since: str | None,
    config_path: str | None,
) -> None:
    """A step's output (stdout and stderr), the latest attempt by default.

    RUN_ID may be any unique prefix of a run id, or `latest`."""
    if attempt is not None and step is None:
        raise click.UsageError("--attempt needs --step")
    try:
        since_seconds = parse_duration(since) if since else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    remote = remote_daemon()
    if remote is not None:
        if since is not None:
            raise click.UsageError("--since reads the log files' times: not with --url")
        # lazy: the REST reads load only with --url
        from scheduler.cli.remote_logs import print_remote_logs
        from scheduler.services.remote_reads import remote_run_ref

        run_ref = remote_run_ref(remote, run_id, pipeline)
        sys.exit(print_remote_logs(remote, run_ref, step, attempt, follow, lines))
    with open_reads(read_config(config_path)) as store:
        code = print_logs(
            store, run_id, step, attempt, follow, lines, since_seconds, pipeline=pipeline
        )
    sys.exit(code)


def print_logs(
    store: HistoryReads,
    run_id: str,
    step: str | None,
    attempt: int | None,
    follow: bool,
    lines: int | None,
    since_seconds: float | None,
    *,
    pipeline: str | None = None,
) -> int:
    """Print the asked logs (then follow them); return the command's exit code."""
    logs = open_logs(store, run_id, step, attempt, pipeline=pipeline)
    out = click.get_binary_stream("stdout")
    if not follow and not logs.has_log():
        return _no_log(logs)
    headers = logs.step is None
    cutoff = time.time() - since_seconds if since_seconds is not None else None  # as file times
    last: tuple[str, int] | None = None
    chunks = logs.initial(lines, cutoff=cutoff)
    for source, data in chunks:
        if headers:
            _header(out, source, first=last is None)
            if data and not data.endswith(b"\n"):
                data += b"\n"  # the next header starts on its own line
        out.write(data)
        last = source.key
    out.flush()
    if not headers and logs.sources:
        last = logs.sources[0].key
    if since_seconds is not None and not chunks:
        moment = SYSTEM_CLOCK.now() - timedelta(seconds=since_seconds)
        click.echo(f"-- no output since {format_absolute(moment)} --", err=True)
    if not follow:
        return 0
    try:
        return follow_logs(store, logs, out, last=last)
    except KeyboardInterrupt:
        click.echo("\n(detached; the run goes on)", err=True)
        return 0


def follow_logs(
    store: HistoryReads, logs: StepLogs, out: BinaryIO, *, last: tuple[str, int] | None
) -> int:
    """Print what the followed logs gain until the step (or, without --step, the run) ends;
    return the exit code of its outcome: 0 completed (or reused), 1 otherwise."""
    for item in logs.follow(store):
        if isinstance(item, bool):
            return 0 if item else 1
        source, data = item
        if source.key != last:
            _header(out, source, first=last is None)
            last = source.key
        out.write(data)
        out.flush()
    return 1


def _header(out: BinaryIO, source: LogSource, *, first: bool) -> None:
    prefix = b"" if first else b"\n"
    out.write(prefix + f"==> {source.step} (attempt {source.attempt}) <==\n".encode())


def _no_log(logs: StepLogs) -> int:
    detail = logs.detail
    if logs.step is None:
        click.echo(
            f"error: run {detail.run.id} has no step logs yet ({detail.run.status})", err=True
        )
    else:
        chosen = pick_attempt(detail, logs.step, logs.attempt)
        click.echo(
            f"error: step {logs.step!r} (attempt {chosen.attempt}) has no log yet "
            f"({chosen.status})",
            err=True,
        )
    return 1
