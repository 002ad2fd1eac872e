"""``pipesched fires [SCHEDULE]``: the fire records — every nominal time or dropped file of a
schedule and what became of it (the run it started, or why none). Read from the store, with or
without a daemon."""

from __future__ import annotations

from datetime import datetime

import click

from scheduler.cli.options import (
    complete_schedule,
    config_option,
    json_option,
    no_headers_option,
    output_option,
    wants_json,
)
from scheduler.cli.reads import open_reads, read_config, remote_daemon, url_option
from scheduler.cli.render import Column, format_absolute, format_moment, print_json, print_table
from scheduler.core.clock import SYSTEM_CLOCK
from scheduler.services.fire_history import list_fires

OUTCOME_STYLES = {
    "started": "green",
    "queued": "cyan",
    "claimed": "yellow",
    "skipped": "magenta",
    "missed": "bold red",
}
# A fire is known by its schedule and nominal time (or file): they stay. On a narrow terminal
# the reason is shortened, then left out, before the run; a file's path keeps its end.
COLUMNS = (
    Column("SCHEDULE", priority=0),
    Column("NOMINAL TIME/FILE", priority=0, shrink="start", min_width=27),
    Column("OUTCOME", priority=1, styles=OUTCOME_STYLES),
    Column("RUN", priority=2),
    Column("REASON", priority=3, shrink="end", min_width=16),
)


@click.command()
@click.argument("schedule", required=False, shell_complete=complete_schedule)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Most fire records to list; 0 lists all.",
)
@json_option
@output_option
@no_headers_option
@config_option
@url_option
def fires(
    schedule: str | None,
    limit: int,
    as_json: bool,
    output: str | None,
    no_headers: bool,
    config_path: str | None,
) -> None:
    """Fire records, newest first: nominal time or file, outcome, reason, run.

    \b
    Example:
      pipesched fires weekly-diabetes-training --limit 5
    """
    remote = remote_daemon()
    if remote is not None:
        # lazy: the REST reads load only with --url
        from scheduler.services.remote_reads import fire_from_json, remote_fires

        if schedule is None:
            raise click.UsageError("with --url, name the SCHEDULE whose fires to list")
        found = remote_fires(remote, schedule, limit=limit)
        if wants_json(as_json, output):
            print_json(found)
            return
        records = [fire_from_json(data) for data in found]
    else:
        config = read_config(config_path)
        with open_reads(config) as store:
            records = list_fires(store, schedule, limit=limit, config=config)
    if wants_json(as_json, output):
        print_json([record.to_json() for record in records])
        return
    now = SYSTEM_CLOCK.now()
    wide = output == "wide"
    rows = [
        (
            r.schedule,
            r.path if r.path is not None else _nominal(r.nominal_time, now, wide=wide),
            r.outcome,
            r.run_id,
            r.reason,
        )
        for r in records
    ]
    print_table(COLUMNS, rows, no_headers=no_headers, wide=wide)


def _nominal(moment: datetime | None, now: datetime, *, wide: bool) -> str:
    """A fire's nominal time, which names it: absolute always (``Wed 2026-11-25 03:00:00
    UTC``), and how long ago with ``wide``."""
    return format_moment(moment, now) if wide else format_absolute(moment)
