"""Finding pipelines under ``pipelines_dir`` by name, cheaply: a name lookup reads each
pipeline.yaml's ``name:`` and validates nothing, so one broken pipeline never stops another."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import yaml

from scheduler.core.errors import NotFound
from scheduler.definitions.config import Config
from scheduler.definitions.pipeline import PIPELINE_FILE

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def pipeline_files(pipelines_dir: Path) -> list[Path]:
    """Every ``<folder>/pipeline.yaml`` directly under ``pipelines_dir``, sorted by folder."""
    try:
        folders = sorted(p for p in Path(pipelines_dir).iterdir() if not p.name.startswith("."))
    except OSError:
        return []
    return [folder / PIPELINE_FILE for folder in folders if (folder / PIPELINE_FILE).is_file()]


def declared_name(file: Path) -> str:
    """The ``name:`` inside a pipeline.yaml, else its folder's name (also when the file does not
    parse: validation reports that)."""
    try:
        data = yaml.load(file.read_text(encoding="utf-8"), Loader=_Loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        data = None
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) and name else file.parent.name


def discover_pipelines(config: Config) -> dict[str, Path]:
    """``{name: pipeline.yaml}`` for every pipeline under config.pipelines_dir. When two files
    claim one name, the first folder in sorted order keeps it (validate_all reports the clash)."""
    found: dict[str, Path] = {}
    for file in pipeline_files(config.pipelines_dir):
        found.setdefault(declared_name(file), file)
    return found


def find_pipeline(name: str, config: Config) -> Path:
    """The pipeline.yaml of pipeline ``name``: a declared name, a folder name under
    pipelines_dir, or a path to a pipeline folder or file."""
    found = discover_pipelines(config)
    if name in found:
        return found[name]
    folder = config.pipelines_dir / name
    if os.sep not in name and (folder / PIPELINE_FILE).is_file():
        return folder / PIPELINE_FILE
    candidate = Path(name)
    if os.sep in name or name.endswith((".yaml", ".yml")):
        if candidate.is_dir() and (candidate / PIPELINE_FILE).is_file():
            return Path(os.path.abspath(candidate / PIPELINE_FILE))
        if candidate.is_file():
            return Path(os.path.abspath(candidate))
    known = sorted(found)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    listed = f"known: {', '.join(known)}" if known else f"no pipelines in {config.pipelines_dir}"
    hint = f"did you mean '{close[0]}'? {listed}" if close else listed
    raise NotFound(f"no pipeline named '{name}'", hint=hint)
