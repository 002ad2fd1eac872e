"""Pipeline drafts (Azure ML's ``PipelineDraft``): a named, editable pipeline to run and publish
again and again, with the experiment, parameter values and settings to run it with.

A draft is one JSON file, ``<state_dir>/drafts/<id>.json``; its pipeline is an SDK snapshot
(``scheduler.services.snapshots``: content-addressed and never changed), named by the draft's
``snapshot``. Editing the pipeline stores a new snapshot and points the draft at it, so a run
submitted earlier keeps the definition it ran. A draft is made from a snapshot, from what a run
ran, from a published version or from another draft. Files are written to a temporary name and
renamed, under one lock per state directory, so a reader never sees half a draft and two
editors never lose each other's change of another field.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from scheduler.core.clock import iso
from scheduler.core.errors import NotFound, PipeschedError
from scheduler.definitions.parameters import resolve_run_parameters
from scheduler.services.pipeline_files import load_snapshot
from scheduler.services.publish import PublishedVersion, publish_definition
from scheduler.services.runs import resolve_run
from scheduler.services.snapshots import (
    definition_for_run,
    load_snapshot_by_id,
    store_snapshot,
)

if TYPE_CHECKING:
    from scheduler.definitions import Pipeline
    from scheduler.definitions.config import Config
    from scheduler.definitions.parameters import DatastoreLike
    from scheduler.store import Store

DRAFTS = "drafts"
DRAFT_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# What ``update_draft`` may change; the rest is the draft's history.
EDITABLE = (
    "name",
    "description",
    "experiment_name",
    "tags",
    "pipeline_parameters",
    "continue_on_step_failure",
    "snapshot",
)


@dataclass(frozen=True)
class Draft:
    """One draft, as its file holds it (``to_json``: the REST API's and the SDK's object)."""

    id: str
    name: str
    snapshot: str
    pipeline: str
    experiment_name: str
    description: str | None = None
    pipeline_parameters: dict[str, Any] = field(default_factory=dict)
    continue_on_step_failure: bool | None = None
    tags: dict[str, str] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    parent_pipeline_id: str | None = None
    parent_pipeline_run_id: str | None = None
    parent_step_run_ids: list[str] = field(default_factory=list)
    parent_pipeline_draft_id: str | None = None
    last_submitted_pipeline_run_id: str | None = None
    created_at: str | None = None
    updated_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Draft:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


# -- making one -----------------------------------------------------------------------------------


def create_draft(
    config: Config,
    *,
    snapshot: str,
    name: str | None = None,
    description: str | None = None,
    experiment_name: str | None = None,
    pipeline_parameters: Mapping[str, Any] | None = None,
    continue_on_step_failure: bool | None = None,
    tags: Mapping[str, str] | None = None,
    properties: Mapping[str, str] | None = None,
    parents: Mapping[str, Any] | None = None,
) -> Draft:
    """A new draft of snapshot ``snapshot``. Its name and experiment default to the pipeline's;
    its parameter values are checked against the pipeline now (ParameterError), as Azure
    checks them when a draft is made."""
    definition = load_snapshot_by_id(config, snapshot)
    parameters = dict(pipeline_parameters or {})
    check_parameters(config, definition, parameters)
    now = _now()
    draft = Draft(
        id=str(uuid.uuid4()),
        name=name or definition.name,
        snapshot=snapshot,
        pipeline=definition.name,
        experiment_name=experiment_name or definition.experiment,
        description=description if description is not None else definition.description,
        pipeline_parameters=parameters,
        continue_on_step_failure=continue_on_step_failure,
        tags=dict(tags or {}),
        properties=dict(properties or {}),
        created_at=now,
        updated_at=now,
        **dict(parents or {}),
    )
    with _locked(config):
        _write(config, draft)
    return draft


def new_draft(
    config: Config,
    store: Store,
    source: Mapping[str, str],
    fields: Mapping[str, Any],
    properties: Mapping[str, str] | None = None,
) -> Draft:
    """A draft of ``source`` — ``{"snapshot": ID}``, ``{"run": ID}``, ``{"pipeline": NAME,
    "version": LABEL}`` or ``{"draft": ID}`` — with ``fields`` (``EDITABLE`` ones) set."""
    if "snapshot" in source:
        return create_draft(
            config, snapshot=source["snapshot"], properties=properties, **dict(fields)
        )
    if "run" in source:
        draft = draft_of_run(config, store, source["run"])
    elif "draft" in source:
        draft = draft_of_draft(config, source["draft"])
    else:
        draft = draft_of_published(config, store, source["pipeline"], source["version"])
    return update_draft(config, draft.id, fields) if fields else draft


def draft_of_run(config: Config, store: Store, run_ref: str) -> Draft:
    """A draft of what a run ran (Azure's ``PipelineDraft.create(ws, pipeline=run)``), with its
    experiment and parameter values. Refused when that definition can no longer be had
    unchanged: a working copy edited since the run."""
    from scheduler.dispatch.submit import content_hash  # lazy: step types; reading must not

    run = store.get_run(resolve_run(store, run_ref))
    definition = definition_for_run(config, store, run)
    if content_hash(definition) != run.content_hash:
        raise PipeschedError(
            f"pipeline {run.pipeline} changed since run {run.id}",
            hint="make the draft from the Pipeline object, or publish the working copy first",
        )
    snapshot, _ = store_snapshot(config, definition.file)
    steps = [f"{run.id}/{step}" for step in definition.steps]
    return create_draft(
        config,
        snapshot=snapshot,
        name=run.pipeline,
        experiment_name=run.experiment,
        pipeline_parameters=dict(run.parameters),
        parents={"parent_pipeline_run_id": run.id, "parent_step_run_ids": steps},
    )


def draft_of_published(config: Config, store: Store, pipeline: str, version: str) -> Draft:
    """A draft of a published version (``NAME@VERSION``)."""
    published = store.get_published(pipeline, version)
    definition = load_snapshot(config, Path(published.snapshot_dir))
    snapshot, _ = store_snapshot(config, definition.file)
    return create_draft(
        config,
        snapshot=snapshot,
        name=pipeline,
        description=published.description,
        parents={"parent_pipeline_id": f"{pipeline}@{version}"},
    )


def draft_of_draft(config: Config, draft_id: str) -> Draft:
    """A copy of another draft (its values and pipeline), as a new draft."""
    source = get_draft(config, draft_id)
    return create_draft(
        config,
        snapshot=source.snapshot,
        name=source.name,
        description=source.description,
        experiment_name=source.experiment_name,
        pipeline_parameters=source.pipeline_parameters,
        continue_on_step_failure=source.continue_on_step_failure,
        tags=source.tags,
        properties=source.properties,
        parents={"parent_pipeline_draft_id": source.id},
    )


def check_parameters(config: Config, definition: Pipeline, parameters: Mapping[str, Any]) -> None:
    """ParameterError for a value the pipeline would refuse at submit."""
    datastores = cast("Mapping[str, DatastoreLike]", config.datastores)
    resolve_run_parameters(definition, parameters, datastores)


# -- reading and changing -------------------------------------------------------------------------


def get_draft(config: Config, draft_id: str) -> Draft:
    path = _file(config, draft_id)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(
            f"no pipeline draft {draft_id!r}", hint="list them: PipelineDraft.list(ws)"
        ) from None
    return Draft.from_json(data)


def list_drafts(config: Config) -> list[Draft]:
    """Every draft, oldest first."""
    folder = drafts_dir(config)
    if not folder.is_dir():
        return []
    drafts = []
    for path in folder.glob("*.json"):
        if DRAFT_ID.fullmatch(path.stem):
            try:
                drafts.append(Draft.from_json(json.loads(path.read_text(encoding="utf-8"))))
            except FileNotFoundError:  # deleted meanwhile
                continue
    return sorted(drafts, key=lambda d: (d.created_at or "", d.id))


def update_draft(config: Config, draft_id: str, changes: Mapping[str, Any]) -> Draft:
    """Change the fields given (``EDITABLE``); parameter values are checked against the
    pipeline the draft will have."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise PipeschedError(f"a draft's {', '.join(sorted(unknown))} cannot be changed")
    with _locked(config):
        draft = get_draft(config, draft_id)
        updated = replace(draft, **dict(changes), updated_at=_now())
        if "snapshot" in changes or "pipeline_parameters" in changes:
            definition = load_snapshot_by_id(config, updated.snapshot)
            check_parameters(config, definition, updated.pipeline_parameters)
            updated = replace(updated, pipeline=definition.name)
        _write(config, updated)
    return updated


def record_submitted(config: Config, draft_id: str, run_id: str) -> Draft:
    """Remember the run last submitted from the draft (``last_submitted_pipeline_run_id``)."""
    with _locked(config):
        draft = replace(get_draft(config, draft_id), last_submitted_pipeline_run_id=run_id)
        _write(config, draft)
    return draft


def delete_draft(config: Config, draft_id: str) -> None:
    """Forget the draft; its snapshot stays (runs submitted from it may name it)."""
    with _locked(config):
        try:
            _file(config, draft_id).unlink()
        except FileNotFoundError:
            raise NotFound(f"no pipeline draft {draft_id!r}") from None


def draft_definition(config: Config, draft: Draft) -> Pipeline:
    """The pipeline the draft holds, to submit."""
    return load_snapshot_by_id(config, draft.snapshot)


def publish_draft(config: Config, store: Store, draft_id: str) -> PublishedVersion:
    """Publish the draft's pipeline as the next version of the pipeline named after the draft
    (Azure's ``PipelineDraft.publish``); the draft stays, to be edited and published again."""
    draft = get_draft(config, draft_id)
    return publish_definition(
        config,
        store,
        draft_definition(config, draft),
        name=draft.name,
        description=draft.description,
    )


# -- files ------------------------------------------------------------------------------------


def drafts_dir(config: Config) -> Path:
    return config.state_dir / DRAFTS


def _file(config: Config, draft_id: str) -> Path:
    """A draft's file; an id that is not one (never a path) is NotFound."""
    if not DRAFT_ID.fullmatch(draft_id):
        raise NotFound(f"no pipeline draft {draft_id!r}", hint="a draft id is a GUID")
    return drafts_dir(config) / f"{draft_id}.json"


def _write(config: Config, draft: Draft) -> None:
    folder = drafts_dir(config)
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".draft-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(draft.to_json(), out, indent=2)
            out.write("\n")
        os.replace(tmp, _file(config, draft.id))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def _locked(config: Config) -> Iterator[None]:
    """One change of drafts at a time on this machine (read, change, write)."""
    folder = drafts_dir(config)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _now() -> str:
    moment = iso(datetime.now(UTC))
    assert moment is not None
    return moment
