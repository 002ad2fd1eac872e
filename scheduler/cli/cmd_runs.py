"""``pipesched runs``: run history, newest first. An open run whose owner died without closing
it (a foreground ``pipesched run`` killed with ``kill -9``) shows ``running (owner gone)``, and
``owner_alive: false`` in --json."""

from __future__ import annotations

import click

from scheduler.cli.options import config_option, json_option, no_headers_option
from scheduler.cli.reads import open_reads, read_config, remote_daemon, url_option
from scheduler.cli.render import (
    STATUS_STYLES,
    format_moment,
    print_json,
    print_table,
    run_duration,
)
from scheduler.core.clock import SYSTEM_CLOCK
from scheduler.core.durations import format_duration
from scheduler.services.runs import OWNER_GONE, list_runs, run_json, runs_metrics, status_text
from scheduler.store.records import RUN_STATUSES

HEADERS = ("ID", "PIPELINE", "STATUS", "TRIGGER", "CREATED", "DURATION", "REASON")
# An open run nobody watches any more is as bad as a failed one.
STYLES = {
    **STATUS_STYLES,
    **{f"{status} ({OWNER_GONE})": STATUS_STYLES["failed"] for status in ("queued", "running")},
}


@click.command()
@click.option("--pipeline", help="Only runs of this pipeline.")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(RUN_STATUSES),
    help="Only runs with this status (repeatable).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Most runs to list; 0 lists all.",
)
@json_option
@no_headers_option
@config_option
@url_option
def runs(
    pipeline: str | None,
    statuses: tuple[str, ...],
    limit: int,
    as_json: bool,
    no_headers: bool,
    config_path: str | None,
) -> None:
    """Run history, newest first (ids are never truncated)."""
    remote = remote_daemon()
    if remote is not None:
        # lazy: the REST reads load only with --url
        from scheduler.services.remote_reads import remote_runs, run_from_json

        found = remote_runs(remote, pipeline=pipeline, statuses=statuses, limit=limit)
        if as_json:
            print_json(found)
            return
        records = [run_from_json(data) for data in found]
    else:
        with open_reads(read_config(config_path)) as store:
            records = list_runs(store, pipeline=pipeline, statuses=statuses, limit=limit)
            metrics = runs_metrics(store, records) if as_json else {}
        if as_json:
            print_json([run_json(record) | metrics[record.id] for record in records])
            return
    now = SYSTEM_CLOCK.now()
    rows = [
        (
            r.id,
            r.pipeline if r.version is None else f"{r.pipeline}@{r.version}",
            status_text(r),
            r.trigger,
            format_moment(r.created_at, now),
            format_duration(run_duration(r.started_at, r.finished_at, now)),
            r.status_reason,
        )
        for r in records
    ]
    print_table(HEADERS, rows, no_headers=no_headers, styles={2: STYLES})
