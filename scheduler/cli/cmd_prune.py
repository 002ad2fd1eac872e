"""``pipesched prune [--dry-run]``: apply ``retention`` now — delete the runs it lets go, with
their logs, work folders, outputs, batch folders and records — and say what went (or, with
``--dry-run``, what would) and the space it frees. Works with or without a running daemon:
each page of runs is one short transaction."""

from __future__ import annotations

import click

from scheduler.cli.options import config_option, json_option, load_config, open_store
from scheduler.cli.render import print_json
from scheduler.core.testclock import clock_from_env
from scheduler.services.retention import prune as prune_now
from scheduler.services.retention import prune_summary_lines


@click.command()
@click.option("--dry-run", is_flag=True, help="Only say what would be deleted.")
@json_option
@config_option
def prune(dry_run: bool, as_json: bool, config_path: str | None) -> None:
    """Apply retention now: delete old runs and the space they hold.

    Keeps the newest keep_last runs of each pipeline, the runs they reused outputs from,
    runs that registered a model, and every queued or running run.

    \b
    Example:
      pipesched prune --dry-run
    """
    config = load_config(config_path)
    with open_store(config) as store:
        report = prune_now(config, store, clock_from_env(), dry_run=dry_run)
    if as_json:
        print_json(report.as_json())
        return
    for line in prune_summary_lines(report):
        click.echo(line)
