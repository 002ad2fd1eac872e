"""``pipesched validate``: check the config, the schedules and every pipeline, all errors at once."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from scheduler.cli.options import config_option, json_option, load_config
from scheduler.cli.render import print_json
from scheduler.core.errors import DefinitionError, DefinitionErrors
from scheduler.definitions import discover_pipelines, load_schedules
from scheduler.services.api_schedules import api_schedule_names
from scheduler.services.schedules import validate_definitions

if TYPE_CHECKING:
    from scheduler.definitions.config import Config


@click.command()
@json_option
@config_option
def validate(as_json: bool, config_path: str | None) -> None:
    """Check config, schedules and every pipeline; exit 1 with every error found.

    Each error is one line on stderr, file:line:col: error: message, then a count."""
    try:
        config = load_config(config_path)
    except DefinitionErrors as exc:  # a broken config: nothing else can be checked
        sys.exit(report(list(exc.errors), as_json))
    errors = validate_definitions(config, api_schedule_names(config))
    if errors:
        sys.exit(report(errors, as_json))
    names = set(discover_pipelines(config))
    pipelines, schedules = len(names), _schedule_count(config, names)
    if as_json:
        print_json({"ok": True, "errors": [], "pipelines": pipelines, "schedules": schedules})
        return
    click.echo(f"ok: config, {_plural(pipelines, 'pipeline')}, {_plural(schedules, 'schedule')}")


def report(errors: list[DefinitionError], as_json: bool) -> int:
    """Print every error (stderr, or one JSON document on stdout); return the exit code 1."""
    errors = DefinitionErrors(errors).errors  # sorted by file and position
    if as_json:
        print_json({"ok": False, "errors": [error_json(e) for e in errors]})
        return 1
    for error in errors:
        click.echo(str(error), err=True)
    click.echo(f"{_plural(len(errors), 'error')} found", err=True)
    return 1


def error_json(error: DefinitionError) -> dict[str, object]:
    position = error.position
    return {
        "file": str(error.file) if error.file else None,
        "line": position.line if position else None,
        "column": position.column if position else None,
        "message": error.message,
        "hint": error.hint,
        "text": str(error),
    }


def _schedule_count(config: Config, pipeline_names: set[str]) -> int:
    if not config.schedules_file.is_file():  # validate_all has judged whether that is an error
        return 0
    return len(load_schedules(config.schedules_file, config, pipeline_names))


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
