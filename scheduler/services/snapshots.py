"""Content-addressed pipeline folders: what an SDK pipeline ran, kept where a run can find it.

An SDK pipeline is saved as a folder (``Pipeline.save``: pipeline.yaml plus its steps' source
directories) and reaches pipesched by submit, publish or upload. Each such folder is copied, as
a published version is (``scheduler.services.pipeline_files.copy_pipeline_tree``: the files the fingerprint
counts, read-only), to ``<state_dir>/snapshots/<content_hash>/`` where ``content_hash`` is the
hash a run of it records (``scheduler.dispatch.submit.content_hash``). So a recorded run finds the exact
definition it ran — for recovery and for ``publish_run`` — long after the notebook's temporary
folder is gone, and submitting the same pipeline twice keeps one copy.

A snapshot is written to a temporary folder and renamed to its hash: a reader never sees half a
snapshot, and of two writers of one hash the second finds the first's folder and keeps it.

A snapshot holds source only (``leave_out``): never pipesched's state directory (the store, the
daemon's socket, earlier snapshots), a datastore, or a file that is not a regular file; and what
``.amlignore`` (else ``.gitignore``) excludes stays out, as in an Azure ML snapshot. A notebook
whose ``source_directory='.'`` is the project folder, ``var/`` and all, snapshots its scripts.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from scheduler.core.errors import (
    DefinitionError,
    DefinitionErrors,
    NotFound,
    PipeschedError,
    SourcePosition,
)
from scheduler.definitions import PIPELINE_FILE, Pipeline, find_pipeline, load_pipeline
from scheduler.definitions.discovery import declared_name
from scheduler.services.pipeline_files import (
    FILES,
    check_inside,
    copy_pipeline_tree,
    load_snapshot,
    make_read_only,
)

if TYPE_CHECKING:
    from scheduler.definitions.config import Config
    from scheduler.store import Store
    from scheduler.store.records import RunRecord

SNAPSHOTS = "snapshots"
MANIFEST = "snapshot.json"
MAX_UPLOAD_BYTES = 200 * 1024 * 1024  # api.max_upload_bytes' default
MAX_UPLOAD_MEMBERS = 20_000
_ID = re.compile(r"^[0-9a-f]{8,64}$")
# What only a pipesched state directory holds: its SQLite store, the daemon's lock and socket.
STATE_MARKERS = ("pipesched.db", "daemon.lock", "pipesched.sock")


class UploadTooLarge(PipeschedError):
    """The upload is larger than a pipeline snapshot may be."""


class BadUpload(PipeschedError):
    """The upload is not a tar.gz of a saved pipeline folder."""


# -- what a snapshot leaves out -------------------------------------------------------------


def is_state_directory(path: str | Path) -> bool:
    """A pipesched state directory, this config's or another's (a notebook's folder may hold
    the ``var/`` of a daemon that serves another config)."""
    return any(os.path.lexists(os.path.join(path, marker)) for marker in STATE_MARKERS)


def leave_out(config: Config | None) -> Callable[[str], bool]:
    """The folders no snapshot copies: any pipesched state directory, and ``config``'s state
    directory and datastores (wherever they are)."""
    own: set[str] = set()
    if config is not None:
        own.add(os.path.realpath(config.state_dir))
        own.update(os.path.realpath(store.path) for store in config.datastores.values())

    def excluded(folder: str) -> bool:
        return os.path.realpath(folder) in own or is_state_directory(folder)

    return excluded


# -- storing ----------------------------------------------------------------------------------


def snapshots_dir(config: Config) -> Path:
    return config.state_dir / SNAPSHOTS


def store_snapshot(config: Config, folder: Path) -> tuple[str, Pipeline]:
    """Copy the pipeline in ``folder`` (a pipeline.yaml or the folder holding one) into the
    snapshot of its content hash, reusing one already there; return (hash, the pipeline loaded
    from the snapshot). DefinitionErrors of the folder's pipeline.yaml propagate."""
    from scheduler.dispatch.submit import content_hash  # lazy: step types; reading must not

    pipeline = load_pipeline(Path(folder), config)
    root = snapshots_dir(config)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    try:
        pipeline_file = copy_pipeline_tree(pipeline, staging / FILES, leave_out(config))
        copied_file = staging / FILES / pipeline_file
        try:
            copied = load_pipeline(copied_file, config)
        except DefinitionErrors as exc:  # e.g. a script that .amlignore leaves out
            raise _rebased(exc, copied_file.parent, pipeline.directory) from None
        check_inside(copied, staging)
        digest = content_hash(copied)  # of the copy: the folder is named for what it holds
        manifest = {"pipeline": copied.name, "pipeline_file": pipeline_file, "hash": digest}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        make_read_only(staging / FILES)
        final = root / digest
        if final.exists() and not (final / MANIFEST).is_file():
            shutil.rmtree(final)  # not a snapshot: writers rename only complete folders
        try:
            os.rename(staging, final)
        except OSError:
            if not (final / MANIFEST).is_file():
                raise
            # The same content was stored before (or by a racing writer): keep that copy.
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return digest, _load(config, final)


def load_snapshot_by_id(config: Config, snapshot_id: str) -> Pipeline:
    """The pipeline of snapshot ``snapshot_id`` (a content hash; never a path)."""
    folder = _folder(config, snapshot_id)
    if folder is None:
        raise NotFound(
            f"no pipeline snapshot {snapshot_id!r}",
            hint="snapshots are made by uploading a saved pipeline (POST /api/v1/snapshots)",
        )
    return _load(config, folder)


def _folder(config: Config, snapshot_id: str) -> Path | None:
    if not _ID.fullmatch(snapshot_id):
        return None
    folder = snapshots_dir(config) / snapshot_id
    return folder if (folder / MANIFEST).is_file() else None


def _load(config: Config, folder: Path) -> Pipeline:
    manifest = json.loads((folder / MANIFEST).read_text())
    return load_pipeline(folder / FILES / manifest["pipeline_file"], config)


# -- uploads ----------------------------------------------------------------------------------


def unpack_upload(config: Config, data: bytes | Path) -> tuple[str, Pipeline]:
    """Store the pipeline folder in a tar.gz (``pipeline.yaml`` at its top, or inside its one
    top-level folder) as a snapshot. ``data``: the archive's bytes, or a file holding it (an
    upload streamed to disk: ``upload_file``). Nothing of the archive may land outside the
    folder it is unpacked into: absolute names, ``..``, links leading out and devices are
    refused, and so are archives larger than ``api.max_upload_bytes`` (compressed, or all files
    unpacked) or with too many members. Definition errors name files relative to the archive."""
    limit = upload_limit(config)
    size = len(data) if isinstance(data, bytes) else data.stat().st_size
    if size > limit:
        raise UploadTooLarge(f"the upload has {size} bytes; at most {limit}")
    root = snapshots_dir(config)
    root.mkdir(parents=True, exist_ok=True)
    unpacked = Path(tempfile.mkdtemp(prefix=".upload-", dir=root))
    try:
        _extract(data, unpacked, limit)
        folder = _pipeline_folder(unpacked)
        try:
            return store_snapshot(config, folder)
        except DefinitionErrors as exc:  # the unpacked folder is about to go: name the archive's
            raise _rebased(exc, unpacked, Path()) from None
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)


def upload_limit(config: Config) -> int:
    """The most bytes an upload may have, compressed and unpacked (``api.max_upload_bytes``)."""
    return config.api.max_upload_bytes


def upload_file(config: Config) -> Path:
    """A new, empty, private file in the snapshots folder to stream an upload into (the
    caller removes it); on the state directory's filesystem, not in memory."""
    root = snapshots_dir(config)
    root.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".upload-", suffix=".tar.gz", dir=root)
    os.close(fd)
    return Path(name)


def _extract(data: bytes | Path, dest: Path, limit: int) -> None:
    try:
        source = io.BytesIO(data) if isinstance(data, bytes) else open(data, "rb")  # noqa: SIM115
        with source, tarfile.open(fileobj=source, mode="r:gz") as tar:
            tar.errorlevel = 1  # a member the filter refuses stops the whole extraction
            members = _checked_members(tar, limit)
            tar.extractall(dest, members=members, filter="data")
    except tarfile.FilterError as exc:
        raise BadUpload(f"the archive has an unsafe member: {exc}") from exc
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise BadUpload(f"not a readable tar.gz archive: {exc}") from exc


def _checked_members(tar: tarfile.TarFile, limit: int) -> list[tarfile.TarInfo]:
    """Every member, refusing what may not be unpacked before anything is written (the ``data``
    filter checks again, links' targets included)."""
    members: list[tarfile.TarInfo] = []
    total = 0
    for member in tar:
        members.append(member)
        if len(members) > MAX_UPLOAD_MEMBERS:
            raise UploadTooLarge(f"the archive has more than {MAX_UPLOAD_MEMBERS} members")
        total += max(member.size, 0)
        if total > limit:
            raise UploadTooLarge(f"the archive unpacks to more than {limit} bytes")
        name = PurePosixPath(member.name)
        if name.is_absolute() or ".." in name.parts:
            raise BadUpload(f"the archive member {member.name!r} would land outside its folder")
        if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
            raise BadUpload(f"the archive member {member.name!r} is not a file or a folder")
    return members


def _pipeline_folder(unpacked: Path) -> Path:
    """pipeline.yaml at the top (which must then say ``name:``: its folder's name is a
    temporary one), else in the archive's only top-level folder."""
    if (unpacked / PIPELINE_FILE).is_file():
        if declared_name(unpacked / PIPELINE_FILE) == unpacked.name:
            raise BadUpload(
                "pipeline.yaml at the top of the archive has no 'name:'",
                hint="add one, or archive the pipeline's folder itself",
            )
        return unpacked
    entries = [p for p in unpacked.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and (entries[0] / PIPELINE_FILE).is_file():
        return entries[0]
    raise BadUpload(
        "the archive has no pipeline.yaml at its top or in its one top-level folder",
        hint="upload what Pipeline.save(folder) wrote",
    )


def _rebased(exc: DefinitionErrors, old: Path, new: Path) -> DefinitionErrors:
    """The same errors, naming files under ``old`` as the same files under ``new``."""
    return DefinitionErrors([_rebase(error, old, new) for error in exc.errors])


def _rebase(error: DefinitionError, old: Path, new: Path) -> DefinitionError:
    file = error.position.file if error.position else error.file
    if file is None:
        return error
    try:
        shown = new / Path(file).resolve().relative_to(old.resolve())
    except ValueError:
        return error
    position = None
    if error.position is not None:
        position = SourcePosition(shown, error.position.line, error.position.column)
    return DefinitionError(error.message, position=position, file=shown, hint=error.hint)


# -- runs -------------------------------------------------------------------------------------


def definition_for_run(config: Config, store: Store, run: RunRecord) -> Pipeline:
    """The definition a recorded run ran: its published version, else the SDK snapshot of its
    content hash, else the working copy — which may have changed since; callers that must
    have the exact definition compare ``content_hash`` (``publish_run`` does)."""
    if run.version is not None:
        published = store.get_published(run.pipeline, run.version)
        return load_snapshot(config, Path(published.snapshot_dir))
    folder = _folder(config, run.content_hash)
    if folder is not None:
        return _load(config, folder)
    return load_pipeline(find_pipeline(run.pipeline, config), config)
