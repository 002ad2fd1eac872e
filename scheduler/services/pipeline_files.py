"""A pipeline's folder copied as a run would see it: pipeline.yaml and every step's source
directory at the same relative places, only the files the step fingerprint counts (plus the
ignore files), made read-only. What a published version and an SDK snapshot both are on disk.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import yaml

from scheduler.core.errors import NotFound, PipeschedError
from scheduler.definitions import Pipeline, load_pipeline
from scheduler.definitions.config import Config
from scheduler.definitions.fingerprint import IGNORE_FILES, source_files

FILES = "files"
PUBLISHED_MANIFEST = "published.json"
_NAME_LINE = re.compile(r"name\s*:")


def copy_pipeline_tree(
    pipeline: Pipeline, dest: Path, leave_out: Callable[[str], bool] | None = None
) -> str:
    """Copy pipeline.yaml and every source directory below ``dest`` at their places relative to
    a common base; return pipeline.yaml's path relative to ``dest``. Folders for which
    ``leave_out(absolute path)`` is true are not copied (pipesched's own state, datastores)."""
    sources = sorted({Path(s.source_directory) for s in pipeline.steps.values()})
    base = Path(os.path.commonpath([pipeline.directory, *sources]))
    if base == pipeline.directory:
        base = base.parent  # keep the folder's name: a pipeline without `name:` is named by it
    for source in sources:
        _copy_source(source, dest / source.relative_to(base), leave_out)
    target = dest / pipeline.file.relative_to(base)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(pipeline.file, target)
    return target.relative_to(dest).as_posix()


def _copy_source(root: Path, dest: Path, leave_out: Callable[[str], bool] | None) -> None:
    """The files ``scheduler.definitions.fingerprint.source_tree_hash`` hashes, plus the ignore files, so a
    snapshot's source hash equals the working copy's at publish time."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in IGNORE_FILES:
        if (root / name).is_file():
            shutil.copy2(root / name, dest / name)
    for rel, full in source_files(root, leave_out):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(full, target)  # follows file symlinks


def rename_pipeline(file: Path, name: str) -> None:
    """Make a copied pipeline.yaml declare ``name``. A block-style top-level ``name:`` line is
    replaced, so comments and layout stay; anything else (a flow mapping, a multi-line name)
    falls back to re-dumping the document."""
    text = file.read_text(encoding="utf-8")
    original = yaml.safe_load(text)
    wanted = {"name": name, **{k: v for k, v in original.items() if k != "name"}}
    kept = [line for line in text.splitlines(keepends=True) if not _NAME_LINE.match(line)]
    edited = f"name: {json.dumps(name)}\n" + "".join(kept)
    try:
        same = yaml.safe_load(edited) == wanted
    except yaml.YAMLError:
        same = False
    if not same:
        edited = yaml.safe_dump(wanted, sort_keys=False, allow_unicode=True)
    os.chmod(file, stat.S_IMODE(os.stat(file).st_mode) | stat.S_IWUSR)  # copied read-only
    file.write_text(edited, encoding="utf-8")


def check_inside(pipeline: Pipeline, snapshot: Path) -> None:
    """An absolute source_directory would point the snapshot back at mutable files."""
    for step in pipeline.steps.values():
        if not Path(step.source_directory).is_relative_to(snapshot):
            shutil.rmtree(snapshot, ignore_errors=True)
            raise PipeschedError(
                f"step '{step.id}' has source_directory {step.source_directory}, outside the "
                "pipeline's tree, so it cannot be snapshotted",
                hint="write source_directory relative to pipeline.yaml",
            )


def make_read_only(root: Path) -> None:
    """Files lose their write bits (folders keep theirs, so ``rm -r`` still works)."""
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            mode = os.lstat(path).st_mode
            os.chmod(path, stat.S_IMODE(mode) & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def load_snapshot(config: Config, snapshot: Path) -> Pipeline:
    """The pipeline of a snapshot folder (its steps' source directories inside the snapshot)."""
    try:
        manifest = json.loads((snapshot / PUBLISHED_MANIFEST).read_text())
    except (OSError, ValueError) as error:
        raise NotFound(f"no published snapshot in {snapshot}") from error
    return load_pipeline(snapshot / FILES / manifest["pipeline_file"], config)
