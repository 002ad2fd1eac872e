"""``pipesched schedule enable|disable|trigger NAME``.

With a daemon answering on its socket, the daemon does it at once. Without one, enable/disable
write the override to the store, where the next daemon start reads it; trigger needs a daemon,
since firing means running the schedule's pipeline under its rules.
"""

from __future__ import annotations

import click

from scheduler.cli.options import complete_schedule, config_option, load_config, open_store
from scheduler.cli.reads import remote_daemon, url_option
from scheduler.core.errors import PipeschedError
from scheduler.services.client import RemoteServices, ServiceClient


@click.group()
@config_option
@url_option
@click.pass_context
def schedule(ctx: click.Context, config_path: str | None) -> None:
    """Enable, disable or fire a schedule; a running daemon takes it without a restart."""
    if config_path is not None:
        ctx.ensure_object(dict)["config_path"] = config_path


@schedule.command()
@click.argument("name", shell_complete=complete_schedule)
@config_option
@url_option
def enable(name: str, config_path: str | None) -> None:
    """Enable schedule NAME, overriding `enabled:` until `schedule disable`."""
    click.echo(_set_enabled(name, True, config_path))


@schedule.command()
@click.argument("name", shell_complete=complete_schedule)
@config_option
@url_option
def disable(name: str, config_path: str | None) -> None:
    """Disable schedule NAME, overriding `enabled:` until `schedule enable`."""
    click.echo(_set_enabled(name, False, config_path))


@schedule.command()
@click.argument("name", shell_complete=complete_schedule)
@config_option
@url_option
def trigger(name: str, config_path: str | None) -> None:
    """Fire schedule NAME now, under its concurrency rule (trigger schedule:NAME).

    Needs the daemon. Exit 0 when a run started (or was queued), 1 when none was.
    """
    fired = _client(config_path).trigger_schedule(name)
    if not fired.run_id:
        why = f"{fired.outcome}: {fired.reason}" if fired.reason else fired.outcome
        raise PipeschedError(f"schedule {name} fired but started no run ({why})")
    click.echo(f"schedule {name} fired: run {fired.run_id} {fired.outcome}")


def _set_enabled(name: str, enabled: bool, config_path: str | None) -> str:
    toggled = _client(config_path).set_schedule_enabled(name, enabled)
    word = "enabled" if enabled else "disabled"
    if toggled.by_daemon:
        return f"schedule {name} {word}"
    return (
        f"schedule {name} {word}; the daemon is not running, so it takes effect at its next start"
    )


def _client(config_path: str | None) -> ServiceClient | RemoteServices:
    """The daemon at ``--url`` when one is named, else this machine's daemon or store."""
    remote = remote_daemon()
    if remote is not None:
        return RemoteServices(remote)
    config = load_config(config_path)
    return ServiceClient(config, lambda: open_store(config))
