"""``pipesched cancel RUN_ID``: through the daemon when it runs the run, else by the run's owner
(a foreground ``pipesched run``, asked with SIGINT) or, when that owner is dead, closed here."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

import click

from scheduler.cli.options import config_option, load_config, open_store

if TYPE_CHECKING:
    from scheduler.services.client import DaemonClient
    from scheduler.store import Store


@click.command()
@click.argument("run_id")
@config_option
def cancel(run_id: str, config_path: str | None) -> None:
    """Cancel run RUN_ID (any unique prefix): its steps are stopped and it ends canceled.

    Works for runs of the daemon and for a foreground `pipesched run` in another terminal,
    with or without a daemon.
    """
    from scheduler.services.client import DaemonClient, socket_path

    config = load_config(config_path)
    with open_store(config) as store:
        full_id = store.resolve_run_id(run_id)
        message = cancel_run(store, full_id, DaemonClient(socket_path(config.state_dir)))
    click.echo(message)


def cancel_run(store: Store, run_id: str, client: DaemonClient) -> str:
    """Route the cancel to whoever owns the run: the daemon when it answers and owns it (or
    the run has no owner yet), the owner process otherwise."""
    from scheduler.services.cancel import RunAlreadyFinished, cancel_without_daemon
    from scheduler.store.records import FINISHED_RUN_STATUSES

    run = store.get_run(run_id)
    if run.status in FINISHED_RUN_STATUSES:
        raise RunAlreadyFinished(f"run {run_id} has already finished: {run.status}")
    if client.available():
        daemon_pid = client.health().get("pid")
        if run.owner is None or run.owner.pid == daemon_pid:
            record = client.post(f"/api/v1/runs/{quote(run_id, safe='')}/cancel")
            status = record.get("status") if isinstance(record, dict) else None
            if status in ("completed", "failed"):
                raise RunAlreadyFinished(f"run {run_id} finished {status} before it was canceled")
            return f"canceled {run_id}"
    return cancel_without_daemon(store, run_id)
