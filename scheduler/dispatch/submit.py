"""Turns a request to run a pipeline into a recorded ``queued`` run — or refuses it before anything
is recorded (bad parameters, a step type or compute target that cannot run yet)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from scheduler.compute import available_compute_types
from scheduler.core.errors import PipeschedError, StepTypeNotAvailable
from scheduler.definitions.config import Config
from scheduler.definitions.fingerprint import pipeline_content_hash, source_tree_hash
from scheduler.definitions.parameters import resolve_run_parameters
from scheduler.executor.steps import runnable_types
from scheduler.store.protocols import DispatchStore
from scheduler.store.records import Owner, RunRecord


def check_runnable(pipeline: Any, config: Config) -> None:
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


def content_hash(pipeline: Any) -> str:
    """Keyed by source folders relative to the pipeline's, so a moved checkout or a published
    snapshot of unchanged files hashes the same as the working copy."""
    sources = {s.source_directory for s in pipeline.steps.values()}
    return pipeline_content_hash(
        pipeline.definition_dict(),
        {os.path.relpath(src, pipeline.directory): source_tree_hash(Path(src)) for src in sources},
    )


def submit_run(
    config: Config,
    store: DispatchStore,
    pipeline: Any,
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
) -> RunRecord:
    """Validate the request, then record the run as ``queued`` with a pending row per step.
    ``version``: the published label ``pipeline`` was loaded from; None for the working copy."""
    check_runnable(pipeline, config)
    canonical = resolve_run_parameters(pipeline, parameters, config.datastores)
    digest = content_hash(pipeline)
    version_id = store.ensure_pipeline_version(
        pipeline.name, digest, pipeline.definition_dict(), version
    )
    if experiment is not None and not experiment.strip():
        raise PipeschedError("the experiment name cannot be empty")
    return store.create_run(
        pipeline=pipeline.name,
        content_hash=digest,
        experiment=experiment or pipeline.experiment,
        parameters=canonical,
        trigger=trigger,
        steps=[(s.id, s.display_name, s.type) for s in pipeline.steps.values()],
        schedule=schedule,
        owner=owner,
        pipeline_version_id=version_id,
        fire=fire,
        run_id=run_id,
        file_fires=file_fires,
        version=version,
    )
