"""Run history as a user asks for it: a run named by any unique prefix of its id or by
``latest``, the list of runs newest first, one run with its steps and the models it registered,
whether an open run's owner still lives, and the metric history of a pipeline (one row per run,
newest first)."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from scheduler.core.clock import iso
from scheduler.core.errors import NotFound
from scheduler.core.procinfo import is_alive
from scheduler.store.records import (
    FINISHED_RUN_STATUSES,
    Metric,
    ModelRecord,
    RunDetail,
    RunRecord,
    metrics_by_name,
)

if TYPE_CHECKING:
    from scheduler.store.reads import HistoryReads

LATEST = "latest"


def resolve_run(store: HistoryReads, ref: str, *, pipeline: str | None = None) -> str:
    """The full id of the run ``ref`` names: any unique prefix of an id (as git does), or
    ``latest`` — the newest run (of ``pipeline`` when given). NotFound or AmbiguousId else."""
    if ref.strip().lower() == LATEST:
        newest = store.list_runs(pipeline=pipeline, limit=1)
        if not newest:
            where = f" of pipeline {pipeline!r}" if pipeline else ""
            raise NotFound(f"there is no run{where} yet", hint="start one with: pipesched run")
        return newest[0].id
    return store.resolve_run_id(ref)


def list_runs(
    store: HistoryReads,
    *,
    pipeline: str | None = None,
    statuses: Sequence[str] = (),
    limit: int = 20,
    before: str | None = None,
    experiment: str | None = None,
    schedule: str | None = None,
    trigger: str | None = None,
) -> list[RunRecord]:
    """Runs newest first; ``limit`` 0 lists all; ``before`` a run id, to page. ``trigger`` is
    a whole trigger (``schedule:nightly``) or its kind (``schedule``)."""
    return store.list_runs(
        pipeline=pipeline,
        statuses=statuses,
        limit=limit,
        before=before,
        experiment=experiment,
        schedule=schedule,
        trigger=trigger,
    )


def get_run(store: HistoryReads, ref: str, *, pipeline: str | None = None) -> RunDetail:
    """One run with every step attempt and metric (``ref`` and ``pipeline`` as
    ``resolve_run`` takes them)."""
    return store.get_run_detail(resolve_run(store, ref, pipeline=pipeline))


def run_models(store: HistoryReads, run_id: str) -> list[ModelRecord]:
    """The model versions a run's steps registered, in the order they were registered."""
    return sorted(store.list_models(run_id=run_id), key=lambda m: (m.created_at, m.name))


def models_field(store: HistoryReads, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """``{"models": [...]}``: the ``models --json`` objects of what the run registered, added
    to the ``show --json`` object."""
    return {"models": [model.to_json() for model in run_models(store, run_id)]}


OWNER_GONE = "owner gone"


def owner_alive(run: RunRecord) -> bool | None:
    """Whether the process that owns an open run (queued or running) still lives: False when
    it is gone, on this host, and left the run open (a foreground ``pipesched run`` killed with
    ``kill -9``: a running daemon closes such a run, ``pipesched cancel`` does without one).
    None when it cannot be told here: a finished run, a run without an owner, or an owner on
    another host."""
    owner = run.owner
    if run.status in FINISHED_RUN_STATUSES or owner is None:
        return None
    if owner.host != socket.gethostname():
        return None
    return is_alive(owner.pid, owner.start_ticks or None)


def owner_field(run: RunRecord) -> dict[str, bool]:
    """``{"owner_alive": true|false}`` for an open run whose owner this host can check, else
    nothing: added to the ``runs --json`` and ``show --json`` objects, never replacing a key."""
    alive = owner_alive(run)
    return {} if alive is None else {"owner_alive": alive}


def run_json(run: RunRecord) -> dict[str, Any]:
    """The ``runs --json`` object, with ``owner_field``."""
    return run.to_json() | owner_field(run)


def status_text(run: RunRecord) -> str:
    """The run's status as tables show it: ``running (owner gone)`` for an open run whose owner
    died without closing it, else the bare status."""
    if owner_alive(run) is False:
        return f"{run.status} ({OWNER_GONE})"
    return str(run.status)


@dataclass(frozen=True)
class MetricHistoryRow:
    """One run of a pipeline and the metrics its steps logged: step id → {name: value}."""

    id: str
    created_at: datetime
    status: str
    metrics: dict[str, dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        """The ``metrics --json`` object: ``{id, created_at, status, metrics}``."""
        return {
            "id": self.id,
            "created_at": iso(self.created_at),
            "status": self.status,
            "metrics": self.metrics,
        }


def metric_history(
    store: HistoryReads, pipeline: str, *, metric: str | None = None, last: int = 20
) -> list[MetricHistoryRow]:
    """The pipeline's last ``last`` runs (0: all), newest first, each with what its steps
    logged; with ``metric``, only that name (steps that did not log it are left out). Two
    queries whatever the number of runs."""
    runs = store.list_runs(pipeline=pipeline, limit=last)
    logged = store.run_metrics([run.id for run in runs])
    return [
        MetricHistoryRow(
            run.id, run.created_at, run.status, step_metrics(logged.get(run.id, []), metric)
        )
        for run in runs
    ]


def runs_metrics(store: HistoryReads, runs: Sequence[RunRecord]) -> dict[str, dict[str, Any]]:
    """Run id → ``{"metrics": {step: {name: value}}}`` for each of ``runs`` (the field
    ``runs --json`` adds), read in one query."""
    logged = store.run_metrics([run.id for run in runs])
    return {run.id: {"metrics": step_metrics(logged.get(run.id, []))} for run in runs}


def step_metrics(metrics: Sequence[Metric], only: str | None = None) -> dict[str, dict[str, Any]]:
    """Step id → ``{name: value}`` (as ``show`` gives each step), steps by id (steps that run
    side by side log in any order), names in the order logged; with ``only``, that name alone,
    and steps without it left out."""
    by_step: dict[str, list[Metric]] = {}
    for item in metrics:
        if only is None or item.name == only:
            by_step.setdefault(item.step, []).append(item)
    return {step: metrics_by_name(by_step[step]) for step in sorted(by_step)}
