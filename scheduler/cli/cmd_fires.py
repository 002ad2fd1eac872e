"""``pipesched fires [SCHEDULE]``: the fire records — every nominal time or dropped file of a
schedule and what became of it (the run it started, or why none). Read from the store, with or
without a daemon."""

from __future__ import annotations

import click

from scheduler.cli.options import config_option, json_option, no_headers_option
from scheduler.cli.reads import open_reads, read_config, remote_daemon, url_option
from scheduler.cli.render import format_moment, print_json, print_table
from scheduler.core.clock import SYSTEM_CLOCK
from scheduler.services.fire_history import list_fires

HEADERS = ("SCHEDULE", "NOMINAL TIME/FILE", "OUTCOME", "REASON", "RUN")
OUTCOME_STYLES = {
    "started": "green",
    "queued": "cyan",
    "claimed": "yellow",
    "skipped": "magenta",
    "missed": "bold red",
}


@click.command()
@click.argument("schedule", required=False)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Most fire records to list; 0 lists all.",
)
@json_option
@no_headers_option
@config_option
@url_option
def fires(
    schedule: str | None, limit: int, as_json: bool, no_headers: bool, config_path: str | None
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
        if as_json:
            print_json(found)
            return
        records = [fire_from_json(data) for data in found]
    else:
        config = read_config(config_path)
        with open_reads(config) as store:
            records = list_fires(store, schedule, limit=limit, config=config)
    if as_json:
        print_json([record.to_json() for record in records])
        return
    now = SYSTEM_CLOCK.now()
    rows = [
        (
            r.schedule,
            r.path if r.path is not None else format_moment(r.nominal_time, now),
            r.outcome,
            r.reason,
            r.run_id,
        )
        for r in records
    ]
    print_table(HEADERS, rows, no_headers=no_headers, styles={2: OUTCOME_STYLES})
