"""``pipesched pipelines``: the pipelines found under ``pipelines_dir``, valid or not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from scheduler.cli.options import config_option, json_option, load_config, no_headers_option
from scheduler.cli.render import print_json, print_table
from scheduler.errors import DefinitionError, DefinitionErrors, PipeschedError

HEADERS = ("NAME", "STEPS", "DESCRIPTION", "STATUS", "PATH")


@click.command()
@json_option
@no_headers_option
@config_option
def pipelines(as_json: bool, no_headers: bool, config_path: str | None) -> None:
    """List the pipelines pipesched knows; an invalid one shows its first error."""
    from scheduler.definitions import discover_pipelines

    config = load_config(config_path)
    entries = [describe(name, path, config) for name, path in discover_pipelines(config).items()]
    if as_json:
        print_json(entries)
        return
    rows = [
        (
            e["name"],
            len(e["steps"]) if e["status"] == "ok" else None,
            e["description"] or None,
            e["status"] if e["status"] == "ok" else f"invalid: {e['errors'][0]}",
            e["path"],
        )
        for e in entries
    ]
    print_table(
        HEADERS, rows, no_headers=no_headers, styles={3: {"ok": "green", "invalid:": "red"}}
    )


def describe(name: str, path: Path, config: Any) -> dict[str, Any]:
    """One pipeline as ``pipelines --json`` shows it: ``{name, description, steps, status,
    errors, path}``; ``status`` is ``ok`` or ``invalid`` (with every error of the file)."""
    from scheduler.definitions import load_pipeline

    entry: dict[str, Any] = {
        "name": name,
        "description": None,
        "steps": [],
        "status": "ok",
        "errors": [],
        "path": str(Path(path).resolve()),
    }
    try:
        pipeline = load_pipeline(path, config)
    except DefinitionErrors as exc:
        return {**entry, "status": "invalid", "errors": [str(e) for e in exc.errors]}
    except (DefinitionError, PipeschedError) as exc:
        return {**entry, "status": "invalid", "errors": [str(exc)]}
    entry["description"] = pipeline.description
    entry["steps"] = list(pipeline.steps)
    return entry
