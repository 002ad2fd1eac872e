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
from scheduler.cli.reads import remote_daemon, url_option
from scheduler.services.client import RemoteServices, ServiceClient


@click.command()
@click.argument("run_id", shell_complete=complete_run_id)
@click.option(
    "--pipeline",
    help="With `latest`: the newest run of this pipeline.",
    shell_complete=complete_pipeline,
)
@config_option
@url_option
def cancel(run_id: str, pipeline: str | None, config_path: str | None) -> None:
    """Cancel run RUN_ID (any unique prefix, or `latest`): its steps are stopped and it ends canceled.

    Works for runs of the daemon and for a foreground `pipesched run` in another terminal,
    with or without a daemon.
    """
    remote = remote_daemon()
    if remote is not None:
        # lazy: the REST reads load only with --url
        from scheduler.services.remote_reads import remote_run_ref

        canceled = RemoteServices(remote).cancel(remote_run_ref(remote, run_id, pipeline))
    else:
        config = load_config(config_path)
        canceled = ServiceClient(config, lambda: open_store(config)).cancel(
            run_id, pipeline=pipeline
        )
    click.echo(f"canceled {canceled.run_id}")
