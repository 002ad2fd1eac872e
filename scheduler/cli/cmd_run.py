"""``pipesched run``: run a pipeline now, in the foreground, recording history like any run."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from scheduler.cli.cmd_show import render_detail
from scheduler.cli.options import config_option, json_option, load_config, open_store
from scheduler.core.clock import SYSTEM_CLOCK
from scheduler.core.durations import format_duration
from scheduler.core.logging import configure_logging
from scheduler.services.submit import execute_foreground, record_foreground_run, working_copy

if TYPE_CHECKING:
    from scheduler.executor import StepEvent


def _parse_assignments(pairs: Sequence[str]) -> dict[str, str]:
    given: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint="-p")
        given[name.strip()] = value
    return given


@click.command()
@click.argument("pipeline")
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Set a pipeline parameter (repeatable). Checked before any run is recorded.",
)
@click.option(
    "--experiment", help="Record the run under this experiment (default: the pipeline's)."
)
@click.option("--regenerate-outputs", is_flag=True, help="Run every step; reuse no earlier output.")
@json_option
@config_option
def run(
    pipeline: str,
    params: tuple[str, ...],
    experiment: str | None,
    regenerate_outputs: bool,
    as_json: bool,
    config_path: str | None,
) -> None:
    """Run PIPELINE now and wait for it; exit 0 only when it completed.

    Progress goes to stderr; the summary (or with --json one JSON document, whatever the outcome)
    to stdout. Ctrl-C cancels the run, stops its steps and records it as canceled.

    \b
    Example:
      pipesched run diabetes-training -p reg_rate=0.1
    """
    configure_logging(level="warning")
    given = _parse_assignments(params)
    config = load_config(config_path)
    definition = working_copy(config, pipeline)
    store = open_store(config)
    # From the moment the run is recorded, Ctrl-C or SIGTERM must cancel it, not kill us: note
    # the signal until the event loop's handlers take over.
    early: list[str] = []
    signal.signal(signal.SIGINT, lambda *_: early.append("canceled by user"))
    signal.signal(signal.SIGTERM, lambda *_: early.append("terminated"))
    record = record_foreground_run(config, store, definition, given, experiment=experiment)
    click.echo(f"run {record.id} of {definition.name} started", err=True)
    outcome = execute_foreground(
        config,
        store,
        definition,
        record,
        early,
        regenerate_outputs=regenerate_outputs,
        on_event=_ProgressPrinter(record.id),
    )
    detail = store.get_run_detail(record.id)
    if as_json:
        click.echo(json.dumps(detail.to_json(), indent=2))
    else:
        render_detail(detail, SYSTEM_CLOCK.now())
    sys.exit(0 if outcome.status == "completed" else 130 if outcome.canceled else 1)


class _ProgressPrinter:
    """One line per step event on stderr, like a build tool."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    def __call__(self, event: StepEvent) -> None:
        took = f" in {format_duration(event.duration)}" if event.duration is not None else ""
        attempt = f" (attempt {event.attempt})" if event.attempt > 1 else ""
        detail = f": {event.detail}" if event.detail else ""
        click.echo(f"  {event.step:<20} {event.status}{attempt}{took}{detail}", err=True)
