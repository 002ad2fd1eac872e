"""``pipesched notify test``: send a sample event to every configured notify target now, with no
daemon needed, and say what became of each. Exit 1 when any target did not take it (or none is
configured), so a deploy script can check its alerting."""

from __future__ import annotations

import asyncio
import json
import sys

import click

from scheduler.cli.options import config_option, find_config_path, json_option
from scheduler.definitions.operating import NOTIFY_EVENTS


@click.group()
def notify() -> None:
    """Alerts: check the notify targets of the config, schedules and pipelines."""


@notify.command("test")
@click.option(
    "--event",
    type=click.Choice(NOTIFY_EVENTS),
    default="failed",
    show_default=True,
    help="The kind of sample event to send.",
)
@config_option
@json_option
def test(event: str, config_path: str | None, as_json: bool) -> None:
    """Send a sample EVENT to every notify target (config, schedules, pipelines) now, once,
    without retries; print ok or failed with the reason for each."""
    # lazy: the definitions and the sender load only for this command
    from scheduler.daemon.alerts import configured_targets
    from scheduler.daemon.schedule_set import load_schedule_set
    from scheduler.services.notify import test_targets

    path = find_config_path(config_path)
    served = load_schedule_set(path, strict=False)
    for error in served.errors:
        click.echo(f"warning: {error}", err=True)
    targets = configured_targets(served.config, served.schedules, served.pipelines)
    if not targets:
        click.echo("no notify targets configured (notify: in the config, a schedule or a pipeline)",
                   err=True)  # fmt: skip
        sys.exit(1)
    results = asyncio.run(test_targets(targets, event, base=served.config.file.parent))
    if as_json:
        click.echo(
            json.dumps(
                [{"target": r.target, "ok": r.ok, "reason": r.reason} for r in results], indent=2
            )
        )
    else:
        for result in results:
            if result.ok:
                click.echo(f"ok      {result.target}")
            else:
                click.echo(f"failed  {result.target}: {result.reason}")
    if not all(result.ok for result in results):
        sys.exit(1)
