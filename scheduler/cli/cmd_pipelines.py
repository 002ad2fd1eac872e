"""``pipesched pipelines``: the pipelines found under ``pipelines_dir``, valid or not, with their
published versions, which one the endpoint runs, and the endpoint URLs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from scheduler.cli.options import config_option, json_option, load_config, no_headers_option
from scheduler.cli.render import print_json, print_table
from scheduler.core.errors import DefinitionError, DefinitionErrors, PipeschedError

HEADERS = ("NAME", "STEPS", "VERSIONS", "DESCRIPTION", "STATUS", "ENDPOINT", "PATH")


@click.command()
@json_option
@no_headers_option
@config_option
def pipelines(as_json: bool, no_headers: bool, config_path: str | None) -> None:
    """List the pipelines pipesched knows; an invalid one shows its first error. VERSIONS marks
    the endpoint's default version with '*'."""
    from scheduler.cli.options import open_store
    from scheduler.definitions import discover_pipelines
    from scheduler.services.publish import list_versions

    config = load_config(config_path)
    with open_store(config) as store:
        published = list_versions(store)
    found = discover_pipelines(config)
    entries = [describe(name, path, config) for name, path in found.items()]
    entries += [
        _published_only(name) for name in sorted({p.pipeline for p in published} - set(found))
    ]
    for entry in entries:
        add_versions(entry, [p for p in published if p.pipeline == entry["name"]], config)
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


def add_versions(entry: dict[str, Any], versions: list[Any], config: Any) -> None:
    """Add ``versions`` (each with its ``url``), ``default_version`` and ``endpoint`` (the URL
    that runs the default version, or the working copy while nothing is published)."""
    from scheduler.services.publish import endpoint_url

    name = entry["name"]
    entry["versions"] = [
        {**v.to_json(), "url": endpoint_url(config, name, v.version)} for v in versions
    ]
    entry["default_version"] = next((v.version for v in versions if v.is_default), None)
    entry["endpoint"] = endpoint_url(config, name, None)


def _published_only(name: str) -> dict[str, Any]:
    """A pipeline whose working copy is gone but whose published versions still run."""
    return {
        "name": name,
        "description": None,
        "steps": [],
        "status": "published",
        "errors": [],
        "path": None,
    }
