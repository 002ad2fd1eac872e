"""``pipesched runs``: run history, newest first. An open run whose owner died without closing
it (a foreground ``pipesched run`` killed with ``kill -9``) shows ``running (owner gone)``, and
``owner_alive: false`` in --json."""

from __future__ import annotations

import click

from scheduler.cli.options import (
    complete_pipeline,
    config_option,
    json_option,
    no_headers_option,
    output_option,
    wants_json,
)
from scheduler.cli.reads import open_reads, read_config, remote_daemon, url_option
from scheduler.cli.render import (
    STATUS_STYLES,
    Column,
    format_absolute,
    print_json,
    print_table,
    run_duration,
    time_cell,
)
from scheduler.core.clock import SYSTEM_CLOCK
from scheduler.core.durations import format_duration
from scheduler.services.runs import OWNER_GONE, list_runs, run_json, runs_metrics, status_text
from scheduler.store.records import RUN_STATUSES

# An open run nobody watches any more is as bad as a failed one.
STYLES = {
    **STATUS_STYLES,
    **{f"{status} ({OWNER_GONE})": STATUS_STYLES["failed"] for status in ("queued", "running")},
}
# On a narrow terminal the reason goes first, then the trigger; the id and pipeline never.
COLUMNS = (
    Column("ID", priority=0),
    Column("PIPELINE", priority=0),
    Column("STATUS", priority=1, styles=STYLES),
    Column("TRIGGER", priority=4, shrink="end"),
    Column("CREATED", priority=2),
    Column("DURATION", priority=3),
    Column("REASON", priority=5, shrink="end", min_width=16),
    Column("EXPERIMENT", wide=True),
    Column("STARTED", wide=True),
    Column("FINISHED", wide=True),
)


@click.command()
@click.option("--pipeline", help="Only runs of this pipeline.", shell_complete=complete_pipeline)
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
@output_option
@no_headers_option
@config_option
@url_option
def runs(
    pipeline: str | None,
    statuses: tuple[str, ...],
    limit: int,
    as_json: bool,
    output: str | None,
    no_headers: bool,
    config_path: str | None,
) -> None:
    """Run history, newest first (ids are never truncated)."""
    remote = remote_daemon()
    if remote is not None:
        # lazy: the REST reads load only with --url
        from scheduler.services.remote_reads import remote_runs, run_from_json

        found = remote_runs(remote, pipeline=pipeline, statuses=statuses, limit=limit)
        if wants_json(as_json, output):
            print_json(found)
            return
        records = [run_from_json(data) for data in found]
    else:
        with open_reads(read_config(config_path)) as store:
            records = list_runs(store, pipeline=pipeline, statuses=statuses, limit=limit)
            metrics = runs_metrics(store, records) if wants_json(as_json, output) else {}
        if wants_json(as_json, output):
            print_json([run_json(record) | metrics[record.id] for record in records])
            return
    now = SYSTEM_CLOCK.now()
    wide = output == "wide"
    rows = [
        (
            r.id,
            r.pipeline if r.version is None else f"{r.pipeline}@{r.version}",
            status_text(r),
            r.trigger,
            time_cell(r.created_at, now, wide=wide),
            format_duration(run_duration(r.started_at, r.finished_at, now)),
            r.status_reason,
            r.experiment,
            format_absolute(r.started_at),
            format_absolute(r.finished_at),
        )
        for r in records
    ]
    print_table(COLUMNS, rows, no_headers=no_headers, wide=wide)
