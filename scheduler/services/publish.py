"""Published pipelines: immutable snapshots under a version label, and each pipeline's endpoint
(Azure ML's PublishedPipeline and PipelineEndpoint).

A snapshot is ``<state_dir>/published/<pipeline>/<version>/``: ``published.json`` (what was
published) and ``files/``, a copy of pipeline.yaml and of every step's source directory at the
same relative places, so the definition loads unchanged and its relative paths (``../shared``
included) land inside the snapshot. Files are copied as the step fingerprint sees them
(``__pycache__``, dotfiles and what ``.gitignore``/``.amlignore`` exclude are left out, as Azure
ML's snapshot does) and made read-only; later edits to the working copy never reach a version.

The files are written to a temporary folder and renamed into place, then the store records the
version; a crash in between leaves a complete folder the store does not know, which the next
publish of that label replaces.

What is published is a loaded definition (``publish_definition``): the working copy
(``publish``, the CLI's), an SDK snapshot (``scheduler.services.snapshots``) or what a run ran
(``publish_run``, Azure's ``PipelineRun.publish_pipeline``).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import socket
import tempfile
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from scheduler.core.clock import iso
from scheduler.core.errors import NotFound, PipeschedError
from scheduler.definitions import Pipeline, find_pipeline, load_pipeline
from scheduler.definitions.config import Config
from scheduler.services.pipeline_files import (
    FILES,
    PUBLISHED_MANIFEST,
    check_inside,
    copy_pipeline_tree,
    load_snapshot,
    make_read_only,
    rename_pipeline,
)
from scheduler.services.runs import resolve_run
from scheduler.services.snapshots import definition_for_run, leave_out
from scheduler.store import Store
from scheduler.store.published import EndpointRecord, PublishedRecord

MANIFEST = PUBLISHED_MANIFEST
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_WILDCARD_HOSTS = {"", "0.0.0.0", "::", "[::]"}
_TRAILING_NUMBER = re.compile(r"(.*?)(\d+)")
ENDPOINT_SUBMIT = "/api/v1/PipelineRuns/PipelineEndpointSubmit"


@dataclass(frozen=True)
class PublishedVersion:
    pipeline: str
    version: str
    description: str | None
    content_hash: str
    snapshot_dir: Path
    published_at: datetime
    is_default: bool

    @property
    def id(self) -> str:
        """``NAME@VERSION``, as a schedule or the SDK's ``PublishedPipeline.id`` names it."""
        return f"{self.pipeline}@{self.version}"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pipeline": self.pipeline,
            "version": self.version,
            "description": self.description,
            "content_hash": self.content_hash,
            "published_at": iso(self.published_at),
            "is_default": self.is_default,
            "snapshot_dir": str(self.snapshot_dir),
        }

    @classmethod
    def from_record(cls, record: PublishedRecord) -> PublishedVersion:
        return cls(
            pipeline=record.pipeline,
            version=record.version,
            description=record.description,
            content_hash=record.content_hash,
            snapshot_dir=Path(record.snapshot_dir),
            published_at=record.published_at,
            is_default=record.is_default,
        )


class VersionExists(PipeschedError):
    """That version is already published."""


class BadLabel(PipeschedError):
    """A pipeline name or version label that cannot name a folder."""

    def __init__(self, message: str | None = None, *, field: str, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.field = field  # "name" or "version": what an API caller got wrong


# -- publishing ---------------------------------------------------------------------------------


def publish(
    config: Config,
    store: Store,
    pipeline_name: str,
    *,
    version: str | None = None,
    description: str | None = None,
) -> PublishedVersion:
    """Snapshot the working copy of ``pipeline_name`` under ``version`` (default: the next
    integer label). The pipeline's first published version becomes its endpoint's default."""
    working = load_pipeline(find_pipeline(pipeline_name, config), config)
    return publish_definition(config, store, working, version=version, description=description)


def publish_definition(
    config: Config,
    store: Store,
    pipeline: Pipeline,
    *,
    name: str | None = None,
    version: str | None = None,
    description: str | None = None,
) -> PublishedVersion:
    """Snapshot a loaded definition (a working copy, an SDK snapshot, what a run ran) as
    version ``version`` of pipeline ``name`` (default: its own name). Under another name the
    copy's pipeline.yaml is rewritten to carry it, so the snapshot loads as that pipeline.

    A label already published returns that version when the content is the same (a notebook
    run again publishes nothing new) and is refused, naming the next free label, when it
    differs: a published version never changes."""
    name = name if name is not None else pipeline.name
    check_label(name, "name")
    if version is not None:
        check_label(version, "version")
    folder = config.state_dir / "published" / name
    folder.mkdir(parents=True, exist_ok=True)
    from scheduler.dispatch.submit import content_hash  # lazy: step types; listing must not

    with _locked(folder / ".lock"):
        existing = {p.version: p for p in store.list_published(name)}
        label = version if version is not None else _next_label(set(existing))
        final = folder / label
        staging = Path(tempfile.mkdtemp(prefix=f".{label}-", dir=folder))
        try:
            pipeline_file = copy_pipeline_tree(pipeline, staging / FILES, leave_out(config))
            if name != pipeline.name:
                rename_pipeline(staging / FILES / pipeline_file, name)
            manifest = {"pipeline": name, "version": label, "pipeline_file": pipeline_file}
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
            if label in existing:
                same = content_hash(load_snapshot(config, staging)) == existing[label].content_hash
                shutil.rmtree(staging, ignore_errors=True)
                if same:  # a notebook run again: the version it published the first time
                    return PublishedVersion.from_record(existing[label])
                raise _taken(name, label, set(existing))
            if final.exists():  # left by a publish that crashed before the store recorded it
                shutil.rmtree(final)
            os.rename(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        snapshot = load_snapshot(config, final)
        check_inside(snapshot, final)
        make_read_only(final / FILES)
        record = store.add_published(
            pipeline=name,
            version=label,
            description=description if description is not None else pipeline.description,
            content_hash=content_hash(snapshot),
            snapshot_dir=str(final),
        )
    return PublishedVersion.from_record(record)


def publish_run(
    config: Config,
    store: Store,
    run_id: str,
    *,
    name: str | None = None,
    version: str | None = None,
    description: str | None = None,
) -> PublishedVersion:
    """Publish the definition a run ran (Azure's ``PipelineRun.publish_pipeline``), as ``name``
    (default: the run's pipeline). Any recorded run will do, finished or not, as on Azure: its
    definition is fixed when the run is recorded. Refused when that definition can no longer be
    had unchanged: a working copy edited since the run."""
    from scheduler.dispatch.submit import content_hash  # lazy: see publish_definition

    run = store.get_run(resolve_run(store, run_id))
    definition = definition_for_run(config, store, run)
    if content_hash(definition) != run.content_hash:
        raise PipeschedError(
            f"pipeline {run.pipeline} changed since run {run.id}",
            hint=f"publish the working copy with  pipesched publish {run.pipeline}",
        )
    return publish_definition(
        config, store, definition, name=name, version=version, description=description
    )


def _next_label(labels: set[str]) -> str:
    numbers = [int(label) for label in labels if label.isdigit()]
    return str(max(numbers, default=0) + 1)


def next_free_label(label: str, labels: set[str]) -> str:
    """The label to publish under instead of a taken ``label``: its trailing number counted up
    until free (``v2`` → ``v3``), else the next integer label."""
    match = _TRAILING_NUMBER.fullmatch(label)
    if match is None:
        return _next_label(labels)
    stem, number = match[1], int(match[2])
    while True:
        number += 1
        candidate = f"{stem}{number}"
        if candidate not in labels:
            return candidate


def _taken(name: str, label: str, labels: set[str]) -> VersionExists:
    free = next_free_label(label, labels)
    return VersionExists(
        f"pipeline '{name}' already has a published version '{label}' with different "
        f"content; the next free label is '{free}'",
        hint=f"published versions never change: publish this one as version '{free}' "
        "(pipesched publish --version, or publish(version=...))",
    )


def check_label(value: str, field: str) -> None:
    """A pipeline name or version label becomes a folder name: refuse anything else."""
    if not _LABEL.fullmatch(value):
        what = "version label" if field == "version" else "pipeline name"
        raise BadLabel(
            f"bad {what} {value!r} for publishing",
            hint="letters, digits, '.', '_' and '-', starting with a letter or digit",
            field=field,
        )


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One publish of a pipeline at a time on this machine: the label check, the rename and the
    store insert happen together."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# -- reading --------------------------------------------------------------------------------------


def list_versions(store: Store, pipeline: str | None = None) -> list[PublishedVersion]:
    return [PublishedVersion.from_record(r) for r in store.list_published(pipeline)]


def get_version(store: Store, pipeline: str, version: str) -> PublishedVersion:
    return PublishedVersion.from_record(store.get_published(pipeline, version))


def default_version(store: Store, pipeline: str) -> str | None:
    return store.get_default_version(pipeline)


def set_default_version(store: Store, pipeline: str, version: str) -> None:
    store.set_default_version(pipeline, version)


def snapshot_dir(config: Config, pipeline: str, version: str) -> Path:
    return config.state_dir / "published" / pipeline / version


def load_published_from_disk(config: Config, pipeline: str, version: str) -> Pipeline:
    """A published version found by its folder alone, for callers that have no store yet (the
    daemon loads its schedules before it opens the store)."""
    if not _LABEL.fullmatch(pipeline) or not _LABEL.fullmatch(version):
        raise NotFound(f"pipeline '{pipeline}' has no published version '{version}'")
    folder = snapshot_dir(config, pipeline, version)
    if not (folder / MANIFEST).is_file():
        raise NotFound(
            f"pipeline '{pipeline}' has no published version '{version}'",
            hint=f"publish it with  pipesched publish {pipeline} --version {version}",
        )
    return load_snapshot(config, folder)


def load_published(
    config: Config, store: Store, pipeline: str, version: str | None
) -> tuple[Pipeline, str | None]:
    """What a request for ``pipeline`` (at ``version``) runs, and the label to record: a named
    version; without one the endpoint's default (which may be a pipeline published under
    another name); without any published version, the working copy (label None)."""
    if version is None:
        default = store.endpoint_default(pipeline)
        if default is None:
            return load_pipeline(find_pipeline(pipeline, config), config), None
        pipeline, version = default
    published = store.get_published(pipeline, version)
    return load_snapshot(config, Path(published.snapshot_dir)), version


# -- endpoints: Azure's PipelineEndpoint, versions numbered 0, 1, 2... ----------------------------


def endpoint_json(config: Config, endpoint: EndpointRecord) -> dict[str, Any]:
    """An endpoint as the SDK and ``GET /api/v1/endpoints`` show it: ``default_version`` and
    each ``version`` are the endpoint's own numbers, as strings ("0", "1"...), and each
    version names the published pipeline it runs (``pipeline_id`` is ``NAME@VERSION``)."""
    default = endpoint.default_number
    return {
        "id": endpoint.endpoint_id,
        "name": endpoint.name,
        "description": endpoint.description,
        "default_version": None if default is None else str(default),
        "endpoint": endpoint_submit_url(config, endpoint.endpoint_id),
        "versions": [
            {
                "version": str(entry.number),
                "pipeline": entry.pipeline,
                "pipeline_version": entry.version,
                "pipeline_id": f"{entry.pipeline}@{entry.version}",
            }
            for entry in endpoint.versions
        ],
    }


def endpoint_version(store: Store, endpoint: EndpointRecord, number: str | None) -> tuple[str, str]:
    """(pipeline, label) of the endpoint's version ``number`` ("0", "1"...; None: the
    default); NotFound naming the versions it has."""
    if number is None:
        return endpoint.default_pipeline, endpoint.default_version
    for entry in endpoint.versions:
        if str(entry.number) == str(number).strip():
            return entry.pipeline, entry.version
    have = ", ".join(str(e.number) for e in endpoint.versions) or "none"
    raise NotFound(
        f"pipeline endpoint '{endpoint.name}' has no version {number!r} (it has: {have})",
        hint="an endpoint numbers its versions 0, 1, 2... in the order they were added",
    )


def add_to_endpoint(
    store: Store,
    endpoint: str,
    pipeline: str,
    version: str,
    *,
    create: bool = False,
    description: str | None = None,
) -> EndpointRecord:
    """Add published ``pipeline@version`` (of any name) to an endpoint as its next version;
    ``create`` makes the endpoint (with that version as its default) when it does not exist."""
    check_label(endpoint, "name")
    store.add_endpoint_version(endpoint, pipeline, version, create=create, description=description)
    return store.get_endpoint(endpoint)


def set_endpoint_default(
    store: Store, endpoint: str, pipeline: str, version: str
) -> EndpointRecord:
    """Make published ``pipeline@version`` (of any name) the endpoint's default, adding it
    as a version first when it is not one."""
    return store.set_endpoint_default(endpoint, pipeline, version)


def rename_endpoint(store: Store, endpoint: str, new_name: str) -> EndpointRecord:
    """Azure's ``set_name``: the endpoint's id, versions and default stay."""
    check_label(new_name, "name")
    return store.rename_endpoint(endpoint, new_name)


def endpoint_submit_url(config: Config, endpoint_id: str) -> str:
    """Azure's URL form of an endpoint: ``.../PipelineRuns/PipelineEndpointSubmit/Id/{id}``,
    which runs the default version; ``+ "/" + version`` runs that version, and
    ``...PipelineEndpointSubmit/Name?name=NAME&pipelineVersion=N`` finds it by name."""
    return f"{_origin(config)}{ENDPOINT_SUBMIT}/Id/{urllib.parse.quote(endpoint_id, safe='')}"


def endpoint_url(config: Config, pipeline: str, version: str | None) -> str:
    """The absolute URL that starts runs: a version's, or the endpoint's (default
    version) when ``version`` is None."""
    path = f"/api/v1/pipelines/{urllib.parse.quote(pipeline, safe='')}"
    if version is not None:
        path += f"/versions/{urllib.parse.quote(version, safe='')}"
    return f"{_origin(config)}{path}/runs"


def _origin(config: Config) -> str:
    api = config.api
    scheme = "https" if api.tls is not None else "http"
    host = socket.gethostname() if api.host in _WILDCARD_HOSTS else api.host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    return f"{scheme}://{host}:{api.port}"
