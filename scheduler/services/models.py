"""The model registry as every front end reaches it: register a file or folder (from a notebook,
from a run's step folder, or uploaded to the daemon), list and show versions, and copy a
version's files out.

A registered version's files are a private copy in the registry's folder
(``<default datastore>/.pipesched/models/<name>/<version>/<file or folder>``), made before the
version is taken: whatever later happens to the source, the version keeps what was registered.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
import tempfile
import uuid
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from scheduler.core.errors import NotFound, PipeschedError
from scheduler.runtime import STAGING_DIR
from scheduler.services.runs import resolve_run
from scheduler.store.model_files import (
    StagedModel,
    checked_name,
    discard_stale_staging,
    models_root,
)
from scheduler.store.records import ModelRecord, StepAttempt

if TYPE_CHECKING:
    from scheduler.definitions.config import Config
    from scheduler.store import Store
    from scheduler.store.reads import HistoryReads

MAX_UPLOAD_MEMBERS = 100_000


class BadModelUpload(PipeschedError):
    """The upload is not a tar archive of one model file or folder."""


class ModelUploadTooLarge(PipeschedError):
    """The upload unpacks to more than the daemon accepts."""


def models_dir(config: Config) -> Path:
    """The registry's folder: in the default datastore, where steps find it too."""
    return models_root(config.default_datastore.path)


# -- registering ----------------------------------------------------------------------------------


def register_model(
    config: Config,
    store: Store,
    model_path: str | os.PathLike[str],
    model_name: str,
    *,
    tags: Mapping[str, Any] | None = None,
    properties: Mapping[str, Any] | None = None,
    description: str | None = None,
    run_id: str | None = None,
    step: str | None = None,
) -> ModelRecord:
    """Register the file or folder at ``model_path`` as the next version of ``model_name``."""
    files = StagedModel.copy_of(models_dir(config), model_name, Path(model_path).absolute())
    return _record(store, files, tags, properties, description, run_id, step)


def register_run_model(
    config: Config,
    store: Store,
    run_ref: str,
    model_name: str,
    model_path: str | None = None,
    *,
    step: str | None = None,
    tags: Mapping[str, Any] | None = None,
    properties: Mapping[str, Any] | None = None,
    description: str | None = None,
) -> ModelRecord:
    """Azure's ``run.register_model``: ``model_path`` (default: the model's name) is relative to
    a step's working folder, e.g. ``outputs/model.pkl``; without ``step``, the one step of the
    run that has it. The version records that run and step."""
    checked_name(model_name)
    run_id = resolve_run(store, run_ref)
    relative = PurePosixPath(model_path if model_path is not None else model_name)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise PipeschedError(
            f"model path {str(relative)!r} must be relative to a step's working folder",
            hint="e.g. outputs/model.pkl",
        )
    latest = store.get_run_detail(run_id).latest_attempts()
    if step is not None and step not in latest:
        raise NotFound(f"run {run_id} has no step {step!r}", hint=f"steps: {', '.join(latest)}")
    found: list[tuple[str, Path]] = []
    for name, attempt in latest.items():
        folder = _working_folder(store, attempt)
        if step not in (None, name) or folder is None:
            continue
        workdir = Path(folder).resolve()
        candidate = (workdir / relative).resolve()
        if candidate.is_relative_to(workdir) and candidate.exists():
            found.append((name, candidate))
    if not found:
        where = f"step {step!r}" if step else "any step"
        raise NotFound(
            f"{where} of run {run_id} has no {relative}",
            hint="model_path is relative to a step's working folder, e.g. outputs/model.pkl",
        )
    if len(found) > 1:
        steps = ", ".join(name for name, _ in found)
        raise PipeschedError(
            f"steps {steps} of run {run_id} all have {relative}",
            hint="register it from one step run: run.find_step_run(NAME)[0].register_model(...)",
        )
    [(step_name, source)] = found
    return register_model(
        config,
        store,
        source,
        model_name,
        tags=tags,
        properties=properties,
        description=description,
        run_id=run_id,
        step=step_name,
    )


def _working_folder(store: Store, attempt: StepAttempt) -> str | None:
    """The folder a step ran in: a reused step's is that of the run it was reused from."""
    if attempt.workdir or not attempt.reused_from:
        return attempt.workdir
    try:
        origin = store.get_run_detail(attempt.reused_from).latest_attempts()
    except NotFound:
        return None
    same = origin.get(attempt.step)
    if same is None or same.fingerprint != attempt.fingerprint:
        same = next((a for a in origin.values() if a.fingerprint == attempt.fingerprint), None)
    return same.workdir if same is not None else None


def _record(
    store: Store,
    files: StagedModel,
    tags: Mapping[str, Any] | None,
    properties: Mapping[str, Any] | None,
    description: str | None,
    run_id: str | None,
    step: str | None,
) -> ModelRecord:
    try:
        return store.register_model(
            files.name,
            files,
            tags=_mapping("tags", tags),
            properties=_mapping("properties", properties),
            description=description,
            run_id=run_id,
            step=step,
        )
    except BaseException:
        files.discard()
        raise


def _mapping(what: str, value: Mapping[str, Any] | None) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PipeschedError(f"{what} must be a dict, not {type(value).__name__}")
    return {str(key): item for key, item in value.items()}


# -- reading --------------------------------------------------------------------------------------


def parse_model_ref(ref: str) -> tuple[str, int | None]:
    """``NAME`` or ``NAME:VERSION`` (Azure's model id) → (name, version or None)."""
    name, colon, version = ref.partition(":")
    if not colon:
        return ref, None
    if not version.isdigit() or int(version) < 1:
        raise PipeschedError(
            f"{ref!r}: a model's version is a number from 1", hint="e.g. diabetes-model:2"
        )
    return name, int(version)


def get_model(store: HistoryReads, ref: str, version: int | None = None) -> ModelRecord:
    """A model version by ``NAME[:VERSION]`` (or a name and ``version``); the latest without."""
    name, given = parse_model_ref(ref)
    return store.get_model(name, version if version is not None else given)


def list_models(
    store: HistoryReads,
    name: str | None = None,
    *,
    tags: Iterable[Any] = (),
    properties: Iterable[Any] = (),
    run_id: str | None = None,
    latest: bool = False,
) -> list[ModelRecord]:
    """Models by name, newest version first, filtered as ``tag_filters`` reads ``tags`` and
    ``properties``."""
    return store.list_models(
        name,
        tags=tag_filters(tags),
        properties=tag_filters(properties),
        run_id=run_id,
        latest=latest,
    )


def tag_filters(specs: Iterable[Any]) -> dict[str, str | None]:
    """Filters as the CLI (``KEY`` or ``KEY=VALUE``) and Azure's SDK (``"key"`` or ``["key",
    "value"]``) write them: key → the value it must have, or None for any value."""
    filters: dict[str, str | None] = {}
    for spec in specs:
        if isinstance(spec, str):
            key, equals, value = spec.partition("=")
            filters[key] = value if equals else None
        elif isinstance(spec, list | tuple) and len(spec) == 2:
            filters[str(spec[0])] = str(spec[1])
        elif isinstance(spec, list | tuple) and len(spec) == 1:
            filters[str(spec[0])] = None
        else:
            raise PipeschedError(
                f"cannot filter by {spec!r}", hint='give "key" or ["key", "value"] (KEY=VALUE)'
            )
    return filters


# -- copying out ----------------------------------------------------------------------------------


def download_model(record: ModelRecord, target_dir: str | os.PathLike[str], exist_ok: bool) -> Path:
    """Copy a version's file or folder into ``target_dir``; the copy's path (Azure's
    ``model.download``). Refuses to replace what is there unless ``exist_ok``."""
    source = Path(record.path)
    if not source.exists():
        raise NotFound(f"the files of model {record.id} are gone from {source}")
    target = Path(target_dir) / source.name
    if target.exists() or target.is_symlink():
        if not exist_ok:
            raise PipeschedError(f"{target} exists", hint="pass exist_ok=True to replace it")
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copyfile(source, target)
    return target


# -- over HTTP: an uploaded archive in, a version's archive out -------------------------------------


def spool_file(config: Config, prefix: str) -> Path:
    """A new, empty, private file beside the registry's staging copies, to stream an upload or
    a download through (the caller removes it): on the datastore's disk, not in memory."""
    staging = models_dir(config) / STAGING_DIR
    staging.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".tar", dir=staging)
    os.close(fd)
    return Path(name)


UPLOAD_PREFIX = "upload-"


def stage_upload(config: Config, archive: Path, *, limit: int) -> str:
    """Unpack the one file or folder in a tar archive (gzip or not) into the registry's
    staging folder; its upload id, for ``register_upload``. Only files and folders may be in
    it, under one top-level name; nothing may land outside it (absolute names, ``..``, links
    and devices are refused), nor unpack to more than ``limit`` bytes."""
    discard_stale_staging(models_dir(config))
    upload = f"{UPLOAD_PREFIX}{uuid.uuid4().hex}"
    staged = models_dir(config) / STAGING_DIR / upload
    staged.mkdir(mode=0o700, parents=True)
    try:
        _extract(archive, staged, limit)
        _make_private(staged)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return upload


def register_upload(
    config: Config,
    store: Store,
    model_name: str,
    upload: str,
    *,
    tags: Mapping[str, Any] | None = None,
    properties: Mapping[str, Any] | None = None,
    description: str | None = None,
) -> ModelRecord:
    """Register what ``stage_upload`` unpacked as the next version of ``model_name``."""
    staged = models_dir(config) / STAGING_DIR / upload
    if not upload.startswith(UPLOAD_PREFIX) or "/" in upload or not staged.is_dir():
        raise NotFound(f"no model upload {upload!r}", hint="upload the files first: POST .../files")
    files = StagedModel(models_dir(config), model_name, str(staged))
    return _record(store, files, tags, properties, description, None, None)


def _extract(archive: Path, dest: Path, limit: int) -> None:
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            tar.errorlevel = 1
            members = _checked_members(tar, limit)
            tar.extractall(dest, members=members, filter="data")
    except tarfile.FilterError as exc:
        raise BadModelUpload(f"the archive has an unsafe member: {exc}") from exc
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise BadModelUpload(f"not a readable tar archive: {exc}") from exc


def _checked_members(tar: tarfile.TarFile, limit: int) -> list[tarfile.TarInfo]:
    members: list[tarfile.TarInfo] = []
    tops: set[str] = set()
    total = 0
    for member in tar:
        members.append(member)
        if len(members) > MAX_UPLOAD_MEMBERS:
            raise ModelUploadTooLarge(f"the archive has more than {MAX_UPLOAD_MEMBERS} members")
        total += max(member.size, 0)
        if total > limit:
            raise ModelUploadTooLarge(f"the archive unpacks to more than {limit} bytes")
        name = PurePosixPath(member.name)
        if name.is_absolute() or ".." in name.parts or not name.parts:
            raise BadModelUpload(f"the archive member {member.name!r} would land outside")
        if not (member.isfile() or member.isdir()):
            raise BadModelUpload(f"the archive member {member.name!r} is not a file or a folder")
        tops.add(name.parts[0])
    if len(tops) != 1:
        raise BadModelUpload(
            f"the archive must hold one file or folder, not {len(tops)}",
            hint="archive the model's file, or the folder that holds it",
        )
    return members


def _make_private(root: Path) -> None:
    for folder, dirs, files in os.walk(root):
        os.chmod(folder, 0o700)
        for name in dirs:
            os.chmod(os.path.join(folder, name), 0o700)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o600)


def pack_model(record: ModelRecord, into: Path) -> None:
    """Write a version's file or folder, under its own name, as a tar archive to ``into``."""
    source = Path(record.path)
    if not source.exists():
        raise NotFound(f"the files of model {record.id} are gone from {source}")
    with tarfile.open(into, mode="w") as tar:
        tar.add(source, arcname=source.name, recursive=True)


def unpack_model(archive: Path, target_dir: str | os.PathLike[str], exist_ok: bool) -> Path:
    """Unpack an archive ``pack_model`` wrote into ``target_dir``; the unpacked file or folder's
    path (the remote ``model.download``). Refuses to replace what is there unless
    ``exist_ok``, and an archive that is not one plain file or folder."""
    target_dir = Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    unpacked = Path(tempfile.mkdtemp(prefix=".model-", dir=target_dir))
    try:
        _extract(archive, unpacked, limit=2**62)
        (entry,) = list(unpacked.iterdir())
        target = target_dir / entry.name
        if target.exists() or target.is_symlink():
            if not exist_ok:
                raise PipeschedError(f"{target} exists", hint="pass exist_ok=True to replace it")
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink()
        os.rename(entry, target)
        return target
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)
