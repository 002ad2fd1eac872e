"""``pipesched pipelines``: the pipelines found under ``pipelines_dir``, valid or not, with their
published versions, which one the endpoint runs, and the endpoint URLs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from scheduler.cli.options import (
    config_option,
    json_option,
    load_config,
    no_headers_option,
    open_store,
)
from scheduler.cli.render import print_json, print_table
from scheduler.services.pipelines import PipelineEntry, check_pipeline, list_pipelines

if TYPE_CHECKING:
    from scheduler.definitions.config import Config

HEADERS = ("NAME", "STEPS", "VERSIONS", "DESCRIPTION", "STATUS", "ENDPOINT", "PATH")


@click.command()
@json_option
@no_headers_option
@config_option
def pipelines(as_json: bool, no_headers: bool, config_path: str | None) -> None:
    """List the pipelines pipesched knows; an invalid one shows its first error. VERSIONS marks
    the endpoint's default version with '*'."""
    config = load_config(config_path)
    with open_store(config) as store:
        found = list_pipelines(config, store)
    entries = [entry_json(entry, config) for entry in found]
    if as_json:
        print_json(entries)
        return
    rows = [
        (
            e["name"],
            len(e["steps"]) if e["status"] == "ok" else None,
            " ".join(v["version"] + ("*" if v["is_default"] else "") for v in e["versions"])
            or None,
            e["description"] or None,
            f"invalid: {e['errors'][0]}" if e["status"] == "invalid" else e["status"],
            e["endpoint"],
            e["path"],
        )
        for e in entries
    ]
    print_table(
        HEADERS, rows, no_headers=no_headers, styles={4: {"ok": "green", "invalid:": "red"}}
    )


def entry_json(entry: PipelineEntry, config: Config) -> dict[str, Any]:
    """One pipeline as ``pipelines --json`` shows it: ``{name, description, steps, status,
    errors, path, versions, default_version, endpoint}``; ``status`` is ``ok``, ``invalid``
    (with every error of the file) or ``published`` (no working copy left)."""
    data: dict[str, Any] = {
        "name": entry.name,
        "description": None,
        "steps": [],
        "status": "published",
        "errors": [],
        "path": None,
    }
    if entry.path is not None:
        check = check_pipeline(config, entry.path)
        data.update(
            description=check.description,
            steps=list(check.steps),
            status="invalid" if check.errors else "ok",
            errors=list(check.errors),
            path=str(Path(entry.path).resolve()),
        )
    data["versions"] = [
        {**v.to_json(), "url": entry.version_urls[v.version]} for v in entry.versions
    ]
    data["default_version"] = entry.default_version
    data["endpoint"] = entry.endpoint
    return data
