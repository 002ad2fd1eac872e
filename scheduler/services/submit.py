"""Submitting a run as a user asks for it: which definition a request means (the working copy,
a published version or the endpoint's default, an SDK snapshot), with the request's own rule for
step failures; and a run recorded and executed in the foreground of this process, owned by it
(``pipesched run``, the SDK's child process). A daemon records its runs through its dispatcher,
from the definition chosen here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from scheduler.compute.reaper import become_subreaper
from scheduler.core.procinfo import current_owner
from scheduler.core.runtimes import RunTimes
from scheduler.definitions import Pipeline, find_pipeline, load_pipeline
from scheduler.dispatch.freespace import check_free_space
from scheduler.dispatch.submit import submit_run
from scheduler.executor import ExecutionOptions, RunExecutor
from scheduler.executor.foreground import execute_in_foreground, note_cancel_signals
from scheduler.services.publish import load_published
from scheduler.services.snapshots import load_snapshot_by_id

__all__ = [
    "ForegroundOutcome",
    "execute_foreground",
    "load_definition",
    "note_cancel_signals",
    "record_foreground_run",
    "with_step_failure_rule",
    "working_copy",
]

if TYPE_CHECKING:
    from scheduler.definitions.config import Config
    from scheduler.executor import StepEvent
    from scheduler.store import Store
    from scheduler.store.records import RunRecord


def working_copy(config: Config, pipeline: str) -> Pipeline:
    """The working copy of ``pipeline`` (a name under ``pipelines_dir``, or a path)."""
    return load_pipeline(find_pipeline(pipeline, config), config)


def load_definition(
    config: Config,
    store: Store,
    *,
    pipeline: str | None = None,
    version: str | None = None,
    snapshot: str | None = None,
    continue_on_step_failure: bool | None = None,
) -> tuple[Pipeline, str | None]:
    """What a request runs, and the version label to record: the SDK snapshot ``snapshot``
    (label None), else ``pipeline`` at ``version`` — without one the endpoint's default, and
    without any published version the working copy (label None). ``continue_on_step_failure``
    (None: the definition's own) overrides the pipeline's rule for this run."""
    if snapshot:
        definition, label = load_snapshot_by_id(config, snapshot), None
    else:
        if pipeline is None:
            raise ValueError("a pipeline name or a snapshot id is needed")
        definition, label = load_published(config, store, pipeline, version)
    return with_step_failure_rule(definition, continue_on_step_failure), label


def with_step_failure_rule(definition: Pipeline, continue_on_step_failure: bool | None) -> Pipeline:
    """The definition, with ``continue_on_step_failure`` for this run when it is given."""
    if continue_on_step_failure is None:
        return definition
    return definition.model_copy(update={"continue_on_step_failure": continue_on_step_failure})


def record_foreground_run(
    config: Config,
    store: Store,
    definition: Pipeline,
    parameters: Mapping[str, Any],
    *,
    experiment: str | None = None,
    version: str | None = None,
    trigger: str = "manual",
    schedule: str | None = None,
    fire: tuple[str, datetime] | None = None,
    times: RunTimes | None = None,
) -> RunRecord:
    """Check the parameters and record a ``queued`` run owned by this process (trigger
    ``manual`` unless told); nothing is recorded when the request is refused (``LowFreeSpace``
    too, when the state directory's filesystem has less free space than ``min_free_space``).
    ``times``: what the run stands for; None: the moment it is recorded, with no interval."""
    check_free_space(config)
    return submit_run(
        config,
        store,
        definition,
        parameters,
        trigger=trigger,
        schedule=schedule,
        experiment=experiment,
        owner=current_owner(),
        fire=fire,
        version=version,
        times=times,
    )


@dataclass(frozen=True)
class ForegroundOutcome:
    """How a run executed in this process ended; ``canceled`` when a signal canceled it."""

    status: str
    canceled: bool


def execute_foreground(
    config: Config,
    store: Store,
    definition: Pipeline,
    run: RunRecord,
    early: list[str],
    *,
    regenerate_outputs: bool = False,
    on_event: Callable[[StepEvent], None] | None = None,
) -> ForegroundOutcome:
    """Execute a recorded run here until it ends: SIGINT, SIGTERM and SIGHUP cancel it (and
    record it) instead of killing the process; ``early`` holds a cancel reason for a signal that came
    between recording and now."""
    executor = RunExecutor(
        config=config,
        store=store,
        pipeline=definition,
        run=run,
        options=ExecutionOptions(regenerate_outputs=regenerate_outputs),
        on_event=on_event,
    )
    become_subreaper()  # what a step leaves behind stays below us, to be killed and reaped
    status = execute_in_foreground(executor, early)
    return ForegroundOutcome(status, executor.canceled)
