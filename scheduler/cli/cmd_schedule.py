"""``pipesched schedule enable|disable|trigger NAME``.

With a daemon answering on its socket, the daemon does it at once. Without one, enable/disable
write the override to the store, where the next daemon start reads it; trigger needs a daemon,
since firing means running the schedule's pipeline under its rules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

import click

from scheduler.cli.options import config_option, load_config, open_store

if TYPE_CHECKING:
    from scheduler.definitions.config import Config
    from scheduler.services.client import DaemonClient
    from scheduler.store import Store


@click.group()
@config_option
@click.pass_context
def schedule(ctx: click.Context, config_path: str | None) -> None:
    """Enable, disable or fire a schedule; a running daemon takes it without a restart."""
    if config_path is not None:
        ctx.ensure_object(dict)["config_path"] = config_path


@schedule.command()
@click.argument("name")
@config_option
def enable(name: str, config_path: str | None) -> None:
    """Enable schedule NAME, overriding `enabled:` until `schedule disable`."""
    click.echo(_set_enabled(name, True, config_path))


@schedule.command()
@click.argument("name")
@config_option
def disable(name: str, config_path: str | None) -> None:
    """Disable schedule NAME, overriding `enabled:` until `schedule enable`."""
    click.echo(_set_enabled(name, False, config_path))


@schedule.command()
@click.argument("name")
@config_option
def trigger(name: str, config_path: str | None) -> None:
    """Fire schedule NAME now, under its concurrency rule (trigger schedule:NAME).

    Needs the daemon. Exit 0 when a run started (or was queued), 1 when none was.
    """
    from scheduler.core.errors import PipeschedError
    from scheduler.services.client import DaemonNotRunning

    client = _client(load_config(config_path))
    if not client.available():
        raise DaemonNotRunning()
    result = client.post(_path(name, "trigger"))
    run_id, outcome, reason = result.get("run_id"), result.get("outcome"), result.get("reason")
    if not run_id:
        why = f"{outcome}: {reason}" if reason else str(outcome)
        raise PipeschedError(f"schedule {name} fired but started no run ({why})")
    click.echo(f"schedule {name} fired: run {run_id} {outcome}")


def _set_enabled(name: str, enabled: bool, config_path: str | None) -> str:
    word = "enabled" if enabled else "disabled"
    config = load_config(config_path)
    client = _client(config)
    if client.available():
        client.post(_path(name, "enable" if enabled else "disable"))
        return f"schedule {name} {word}"
    with open_store(config) as store:
        known = schedule_names(config, store)
        if name not in known:
            raise unknown_schedule(name, known)
        store.set_override(name, enabled)
    return (
        f"schedule {name} {word}; the daemon is not running, so it takes effect at its next start"
    )


def schedule_names(config: Config, store: Store) -> set[str]:
    """Every schedule a daemon of this config would know: those in the schedules file (read
    leniently when the file has errors, so a broken schedule can still be disabled) and those
    kept in the store (created through the API)."""
    from scheduler.core.errors import DefinitionErrors
    from scheduler.definitions import discover_pipelines, load_schedules
    from scheduler.definitions.yamlsource import read_yaml

    names = {state.name for state in store.schedule_states().values() if state.source == "api"}
    try:
        found = load_schedules(config.schedules_file, config, set(discover_pipelines(config)))
        names.update(schedule.name for schedule in found)
    except DefinitionErrors:
        try:
            raw = read_yaml(config.schedules_file).get(("schedules",)) or []
        except DefinitionErrors:
            raw = []
        if isinstance(raw, list):
            names.update(
                item["name"]
                for item in raw
                if isinstance(item, dict) and isinstance(item.get("name"), str)
            )
    return names


def unknown_schedule(name: str, known: set[str]) -> Exception:
    from scheduler.core.errors import NotFound

    hint = f"known: {', '.join(sorted(known))}" if known else "there are no schedules"
    return NotFound(f"no schedule {name!r}", hint=hint)


def _client(config: Config) -> DaemonClient:
    from scheduler.services.client import DaemonClient, socket_path

    return DaemonClient(socket_path(config.state_dir))


def _path(name: str, action: str) -> str:
    return f"/api/v1/schedules/{quote(name, safe='')}/{action}"
