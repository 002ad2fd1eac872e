"""``pipesched run``: run a pipeline now, in the foreground, recording history like any run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from scheduler.cli.options import (
    complete_pipeline,
    config_option,
    find_config_path,
    json_option,
    open_store,
    requested_config_path,
)
from scheduler.cli.run_compiled import (
    ProgressPrinter,
    keep_running_when_output_closes,
    report,
    run_compiled,
)
from scheduler.definitions.compiled import (
    compile_plan,
    config_request,
    forget_plan,
    save_plan,
)

if TYPE_CHECKING:
    from scheduler.definitions.config import Config
    from scheduler.definitions.pipeline import Pipeline


def _parse_assignments(pairs: Sequence[str]) -> dict[str, str]:
    given: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint="-p")
        given[name.strip()] = value
    return given


@click.command()
@click.argument("pipeline", shell_complete=complete_pipeline)
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
    to stdout. Ctrl-C cancels the run, stops its steps and records it as canceled; so does a
    terminal that hangs up (SIGHUP). Output that nobody reads any more (`| head`) is dropped:
    the run goes on to its end and the exit status is still its outcome.

    \b
    Example:
      pipesched run diabetes-training -p reg_rate=0.1
    """
    keep_running_when_output_closes()  # before logging takes hold of stderr
    given = _parse_assignments(params)
    request = config_request(requested_config_path(config_path))
    if not given:
        ended = run_compiled(request, pipeline, experiment, regenerate_outputs)
        if ended is not None:
            detail, status, canceled = ended
            report(detail, as_json, status, canceled, quick_exit=True)
    _run_loaded(
        request,
        find_config_path(config_path),
        pipeline,
        given,
        experiment,
        regenerate_outputs,
        as_json,
    )


def _run_loaded(
    request: list[str | None],
    config_file: Path,
    pipeline: str,
    given: dict[str, str],
    experiment: str | None,
    regenerate_outputs: bool,
    as_json: bool,
) -> None:
    """The full path: load and validate the definitions, record and execute through the store;
    and compile the pipeline's plan for the next run."""
    # lazy: the full path's imports, which the lean path never pays for
    from scheduler.core.logging import configure_logging
    from scheduler.definitions.config import load_config
    from scheduler.definitions.discovery import find_pipeline
    from scheduler.definitions.pipeline_loader import load_pipeline
    from scheduler.services.submit import (
        execute_foreground,
        note_cancel_signals,
        record_foreground_run,
    )

    configure_logging(level="warning")
    config = load_config(config_file)
    pipeline_file = find_pipeline(pipeline, config)
    definition = load_pipeline(pipeline_file, config)
    store = open_store(config)
    _compile(request, pipeline, config, definition, pipeline_file)
    # From the moment the run is recorded, Ctrl-C, SIGTERM or SIGHUP must cancel it, not kill
    # us: note the signal until the event loop's handlers take over.
    early = note_cancel_signals()
    record = record_foreground_run(config, store, definition, given, experiment=experiment)
    click.echo(f"run {record.id} of {definition.name} started", err=True)
    outcome = execute_foreground(
        config,
        store,
        definition,
        record,
        early,
        regenerate_outputs=regenerate_outputs,
        on_event=ProgressPrinter(record.id),
    )
    report(store.get_run_detail(record.id), as_json, outcome.status, outcome.canceled)


def _compile(
    request: list[str | None],
    pipeline: str,
    config: Config,
    definition: Pipeline,
    pipeline_file: Path,
) -> None:
    """Cache the plan of ``definition`` for the next ``pipesched run`` of it (or forget a plan
    the lean path cannot run)."""
    from scheduler.store.migrate import HEAD_REVISION  # lazy: the full path has loaded the store

    plan = compile_plan(config, definition, pipeline_file, schema_revision=HEAD_REVISION)
    if plan is None:
        forget_plan(request, pipeline)
    else:
        save_plan(request, pipeline, plan)
