"""``pipesched cancel RUN_ID``: through the daemon when it runs the run, else by the run's owner
(a foreground ``pipesched run``, asked with SIGINT) or, when that owner is dead, closed here."""

from __future__ import annotations

import click

from scheduler.cli.options import (
    complete_pipeline,
    complete_run_id,
    config_option,
    load_config,
    open_store,
)
from scheduler.services.client import ServiceClient


@click.command()
@click.argument("run_id", shell_complete=complete_run_id)
@click.option(
    "--pipeline",
    help="With `latest`: the newest run of this pipeline.",
    shell_complete=complete_pipeline,
)
@config_option
def cancel(run_id: str, pipeline: str | None, config_path: str | None) -> None:
    """Cancel run RUN_ID (any unique prefix, or `latest`): its steps are stopped and it ends canceled.

    Works for runs of the daemon and for a foreground `pipesched run` in another terminal,
    with or without a daemon.
    """
    config = load_config(config_path)
    canceled = ServiceClient(config, lambda: open_store(config)).cancel(run_id, pipeline=pipeline)
    click.echo(f"canceled {canceled.run_id}")
