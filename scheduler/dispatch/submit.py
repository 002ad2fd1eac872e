"""Turns a request to run a pipeline into a recorded ``queued`` run — or refuses it before anything
is recorded (bad parameters, a step type or compute target that cannot run yet).

Two halves, so that a caller on an event loop can hand each to its own thread: ``prepare_run``
checks the request and hashes the pipeline's sources (no store), ``record_run`` writes the run
(the store only). ``submit_run`` does both, for callers without a loop.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from scheduler.compute import available_compute_types
from scheduler.core.errors import PipeschedError, StepTypeNotAvailable
from scheduler.core.procinfo import Owner
from scheduler.core.runtimes import RunTimes
from scheduler.definitions.config import Config
from scheduler.definitions.fingerprint import pipeline_content_hash, source_tree_hash
from scheduler.definitions.parameters import DatastoreLike, resolve_run_parameters
from scheduler.definitions.pipeline import Pipeline
from scheduler.executor.steps import runnable_types
from scheduler.store.protocols import DispatchStore
from scheduler.store.records import RunRecord


@dataclass(frozen=True)
class PreparedRun:
    """A checked request: canonical parameters and the pipeline's content hash."""

    pipeline: Pipeline
    parameters: dict[str, Any]
    content_hash: str
    experiment: str | None  # None: the pipeline's own


def check_runnable(pipeline: Pipeline, config: Config) -> None:
    """Refuse a pipeline whose steps this version cannot run, naming each and why."""
    problems = []
    for step in pipeline.steps.values():
        if step.type not in runnable_types():
            problems.append(f"step '{step.id}' has type '{step.type}', which cannot run yet")
        target = config.compute.get(step.compute)
        if target is not None and target.type not in available_compute_types():
            problems.append(
                f"step '{step.id}' uses compute '{step.compute}' of type '{target.type}', "
                "which cannot run steps yet"
            )
    if problems:
        raise StepTypeNotAvailable(
            "; ".join(problems), hint=f"runnable step types: {', '.join(sorted(runnable_types()))}"
        )


def content_hash(pipeline: Pipeline) -> str:
    """Keyed by source folders relative to the pipeline's, so a moved checkout or a published
    snapshot of unchanged files hashes the same as the working copy."""
    sources = {s.source_directory for s in pipeline.steps.values()}
    return pipeline_content_hash(
        pipeline.definition_dict(),
        {os.path.relpath(src, pipeline.directory): source_tree_hash(Path(src)) for src in sources},
    )


def prepare_run(
    config: Config,
    pipeline: Pipeline,
    parameters: Mapping[str, Any],
    experiment: str | None = None,
) -> PreparedRun:
    """Check the request and hash the pipeline's sources; reads files, never the store."""
    check_runnable(pipeline, config)
    # The Protocol declares plain attributes; the config's frozen fields are only read.
    datastores = cast("Mapping[str, DatastoreLike]", config.datastores)
    canonical = resolve_run_parameters(pipeline, parameters, datastores)
    return PreparedRun(pipeline, canonical, content_hash(pipeline), experiment)


def record_run(
    store: DispatchStore,
    prepared: PreparedRun,
    *,
    trigger: str = "manual",
    schedule: str | None = None,
    owner: Owner | None = None,
    fire: tuple[str, datetime] | None = None,
    run_id: str | None = None,
    file_fires: list[tuple[str, str, int, int]] | None = None,
    version: str | None = None,
    times: RunTimes | None = None,
) -> RunRecord:
    """Record the run as ``queued`` with a pending row per step (one transaction settles
    ``fire`` and ``file_fires``). ``version``: the published label; None for the working copy.
    ``times``: what the run stands for; None: the moment it is recorded, with no interval."""
    pipeline = prepared.pipeline
    version_id = store.ensure_pipeline_version(
        pipeline.name, prepared.content_hash, pipeline.definition_dict(), version
    )
    experiment = prepared.experiment
    if experiment is not None and not experiment.strip():
        raise PipeschedError("the experiment name cannot be empty")
    return store.create_run(
        pipeline=pipeline.name,
        content_hash=prepared.content_hash,
        experiment=experiment or pipeline.experiment,
        parameters=prepared.parameters,
        trigger=trigger,
        steps=[(s.id, s.display_name, s.type) for s in pipeline.steps.values()],
        schedule=schedule,
        owner=owner,
        pipeline_version_id=version_id,
        fire=fire,
        run_id=run_id,
        file_fires=file_fires,
        version=version,
        times=times,
    )


def submit_run(
    config: Config,
    store: DispatchStore,
    pipeline: Pipeline,
    parameters: Mapping[str, Any],
    *,
    trigger: str = "manual",
    experiment: str | None = None,
    schedule: str | None = None,
    owner: Owner | None = None,
    fire: tuple[str, datetime] | None = None,
    run_id: str | None = None,
    file_fires: list[tuple[str, str, int, int]] | None = None,
    version: str | None = None,
    times: RunTimes | None = None,
) -> RunRecord:
    """Validate the request, then record the run as ``queued`` with a pending row per step.
    ``version``: the published label ``pipeline`` was loaded from; None for the working copy."""
    prepared = prepare_run(config, pipeline, parameters, experiment)
    return record_run(
        store,
        prepared,
        trigger=trigger,
        schedule=schedule,
        owner=owner,
        fire=fire,
        run_id=run_id,
        file_fires=file_fires,
        version=version,
        times=times,
    )
