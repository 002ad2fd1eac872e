"""``pipesched reload``: the running daemon reloads config, schedules and pipelines, as SIGHUP
(``systemctl reload pipesched``) makes it. Unlike the signal, the command hears the outcome:
exit 1 with the daemon's errors when a definition is broken (the daemon keeps serving the
previous ones), or when no daemon runs."""

from __future__ import annotations

import sys

import click

from scheduler.cli.options import config_option, load_config, open_store
from scheduler.cli.reads import remote_daemon, url_option
from scheduler.services.client import RemoteServices, ServiceClient


@click.command()
@config_option
@url_option
def reload(config_path: str | None) -> None:
    """Ask the running daemon to reload config, schedules and pipelines (as SIGHUP does).

    Exit 0 when it serves the new definitions; 1 when it refused them (each error is
    printed; the previous definitions keep serving) or no daemon runs."""
    remote = remote_daemon()
    if remote is not None:
        answer = RemoteServices(remote).reload()
    else:
        config = load_config(config_path)
        answer = ServiceClient(config, lambda: open_store(config)).reload()
    if answer.get("reloaded"):
        click.echo(f"reloaded: {answer.get('schedules')} schedules served")
        return
    for error in answer.get("errors") or []:
        click.echo(error, err=True)
    click.echo("reload refused: the daemon keeps serving the previous definitions", err=True)
    sys.exit(1)
