"""The model registry's folder: ``<default datastore>/.pipesched/models/<name>/<version>/``,
holding the registered file or folder under its own name.

The layout and the claim of a version are ``scheduler.runtime``'s (a step registers a model
with the standard library only); this module adds what the store's side needs: files staged
for a version that a transaction claims or gives back (``StagedModel``), and the record of a
version a step claimed (``record_step_model``). Names are checked before they touch a path, so
nothing lands outside the folder; folders are 0700 and files 0600, as in the state directory.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scheduler.core.errors import PipeschedError
from scheduler.runtime import (
    STAGING_DIR,
    ModelNotFound,
    check_model_name,
    claim_version,
    model_file,
    stage_model,
)
from scheduler.store.errors import AlreadyExists
from scheduler.store.protocols import ModelStore
from scheduler.store.records import ModelRecord

MODELS_FOLDER = Path(".pipesched") / "models"
STALE_STAGING_SECONDS = 24 * 3600  # a copy a crashed writer left behind


class BadModelName(PipeschedError):
    """That cannot name a model."""


def models_root(datastore_path: Path) -> Path:
    """The registry's folder in a datastore (the default datastore holds it)."""
    return Path(datastore_path) / MODELS_FOLDER


def checked_name(name: str) -> str:
    """``name`` when it can name a model, else BadModelName saying what may."""
    try:
        return check_model_name(name)
    except ValueError as exc:
        raise BadModelName(str(exc)) from None


class StagedModel:
    """A private copy of a model's files in ``<root>/.staging/``, waiting for a version."""

    def __init__(self, root: Path, name: str, staged: str) -> None:
        self.root, self.name, self.staged = Path(root), checked_name(name), staged
        self.version: int | None = None

    @classmethod
    def copy_of(cls, root: Path, name: str, source: Path) -> StagedModel:
        """Copy ``source`` (a file or a folder) now, so later changes to it do not count."""
        checked_name(name)
        if not source.exists():
            raise PipeschedError(f"model path {str(source)!r} cannot be found")
        discard_stale_staging(root)
        return cls(root, name, stage_model(root, source))

    @classmethod
    def from_version(cls, root: Path, name: str, version: int) -> StagedModel:
        """The files of a version, moved back to the staging folder to take another version."""
        staged = os.path.join(root, STAGING_DIR, f"{name}-{version}-{time.time_ns()}")
        os.rename(os.path.join(root, checked_name(name), str(version)), staged)
        return cls(root, name, staged)

    def claim(self, first: int) -> tuple[int, str]:
        version, path = claim_version(self.root, self.name, self.staged, first)
        self.version = version
        return version, path

    def release(self) -> None:
        if self.version is None:
            return
        os.rename(os.path.join(self.root, self.name, str(self.version)), self.staged)
        self.version = None

    def discard(self) -> None:
        """Remove the staged copy (after a failure before any version was claimed)."""
        if self.version is None:
            shutil.rmtree(self.staged, ignore_errors=True)


def discard_stale_staging(root: Path, older_than: float = STALE_STAGING_SECONDS) -> None:
    """Remove copies (and upload files) a crashed writer left in the staging folder more than
    a day ago."""
    folder = Path(root) / STAGING_DIR
    if not folder.is_dir():
        return
    deadline = time.time() - older_than
    for entry in folder.iterdir():
        try:
            if entry.lstat().st_mtime >= deadline:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink()
        except FileNotFoundError:
            continue


def record_step_model(
    store: ModelStore, root: Path, request: Mapping[str, Any], *, run_id: str, step: str
) -> ModelRecord:
    """Record a version a step claimed (a ``runtime.read_model_requests`` entry). When the
    store already has that version (its folder was deleted by hand since), the files move to
    the next free version and that one is recorded."""
    name, version = checked_name(request["name"]), int(request["version"])
    try:
        path = model_file(root, name, version)
    except ModelNotFound as exc:
        raise PipeschedError(f"the files of model {name}:{version} are gone: {exc}") from None
    meta: dict[str, Any] = {
        "tags": request.get("tags") or {},
        "properties": request.get("properties") or {},
        "description": request.get("description"),
        "run_id": run_id,
        "step": step,
    }
    try:
        return store.add_model(name, version, path, **meta)
    except AlreadyExists:
        return store.register_model(name, StagedModel.from_version(root, name, version), **meta)
