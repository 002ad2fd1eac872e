"""A pipeline as ``pipesched pipelines --json`` shows it, made from the services' own check or
rebuilt from a daemon's ``GET /api/v1/pipelines`` answer: standard library only, so that the
command asks a running daemon without loading the pipeline models or the store."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def working_copy_fields(
    path: Path | None, description: str | None, steps: tuple[str, ...], errors: tuple[str, ...]
) -> dict[str, Any]:
    """``{description, steps, status, errors, path}``: ``status`` is ``ok``, ``invalid`` (with
    every error of the file) or ``published`` (no working copy left)."""
    if path is None:
        return {"description": None, "steps": [], "status": "published", "errors": [], "path": None}
    return {
        "description": description,
        "steps": list(steps),
        "status": "invalid" if errors else "ok",
        "errors": list(errors),
        "path": str(Path(path).resolve()),
    }


def entries_from_daemon(answer: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``pipelines --json`` objects of a daemon's answer, in the command's order: working
    copies by folder, then pipelines with only published versions left, by name."""
    working = sorted((e for e in answer if e.get("path")), key=lambda e: Path(e["path"]).parent)
    published = sorted((e for e in answer if not e.get("path")), key=lambda e: e["name"])
    return [
        {
            "name": entry["name"],
            "description": entry.get("description"),
            "steps": entry.get("steps", []),
            "status": entry.get("status", "published"),
            "errors": entry.get("errors", []),
            "path": entry.get("path"),
            "versions": [
                {k: v for k, v in version.items() if k != "endpoint"} | {"url": version["endpoint"]}
                for version in entry["versions"]
            ],
            "default_version": entry["default_version"],
            "endpoint": entry["endpoint"],
        }
        for entry in [*working, *published]
    ]
