"""Plain records that the store hands out: no ORM objects leave the store package.

These are also the JSON shapes users and scripts read (``runs --json``, ``show --json``), so the CLI and
the REST API render the same dict from the same record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from scheduler.core.clock import iso
from scheduler.core.procinfo import Owner

RUN_STATUSES = ("queued", "running", "completed", "failed", "canceled")
STEP_STATUSES = ("pending", "running", "completed", "failed", "canceled", "skipped", "reused")
FINISHED_RUN_STATUSES = frozenset({"completed", "failed", "canceled"})
FINISHED_STEP_STATUSES = frozenset({"completed", "failed", "canceled", "skipped", "reused"})
# A run status in Azure ML's words (the REST API's StatusCode, the SDK's get_status()).
AZURE_STATUS_CODES = {
    "queued": "NotStarted",
    "running": "Running",
    "completed": "Finished",
    "failed": "Failed",
    "canceled": "Canceled",
}


@dataclass
class RunRecord:
    id: str
    pipeline: str
    version: str | None
    content_hash: str
    experiment: str
    status: str
    status_reason: str | None
    recovered: bool
    trigger: str
    schedule: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    parameters: dict[str, Any] = field(default_factory=dict)
    owner: Owner | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``runs --json`` object."""
        return {
            "id": self.id,
            "pipeline": self.pipeline,
            "version": self.version,
            "content_hash": self.content_hash,
            "experiment": self.experiment,
            "status": self.status,
            "status_reason": self.status_reason,
            "recovered": self.recovered,
            "trigger": self.trigger,
            "schedule": self.schedule,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
        }


@dataclass
class StepAttempt:
    """One attempt of one step in one run (a row of ``step_runs``)."""

    run_id: str
    step: str
    attempt: int
    display_name: str
    type: str
    status: str
    status_reason: str | None = None
    exit_code: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    pid: int | None = None
    pgid: int | None = None
    proc_start_ticks: int | None = None
    log_path: str | None = None
    workdir: str | None = None
    fingerprint: str | None = None
    reused_from: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass
class Metric:
    """One ``run.log*`` call. ``kind`` is scalar, list, row or image."""

    step: str
    attempt: int
    name: str
    kind: str
    value: Any
    logged_at: datetime


@dataclass
class RunDetail:
    """A run with its step attempts (all of them, oldest first) and metrics."""

    run: RunRecord
    attempts: list[StepAttempt]
    metrics: list[Metric]

    def latest_attempts(self) -> dict[str, StepAttempt]:
        """Step name → its latest attempt, in the order steps first appear."""
        latest: dict[str, StepAttempt] = {}
        for attempt in self.attempts:
            current = latest.get(attempt.step)
            if current is None or attempt.attempt >= current.attempt:
                latest[attempt.step] = attempt
        return latest

    def to_json(self) -> dict[str, Any]:
        """The ``show --json`` / ``run --json`` object."""
        data = self.run.to_json()
        data["parameters"] = dict(self.run.parameters)
        steps = []
        for name, last in self.latest_attempts().items():
            tried = [a for a in self.attempts if a.step == name and a.started_at is not None]
            steps.append(
                {
                    "name": name,
                    "display_name": last.display_name,
                    "type": last.type,
                    "status": last.status,
                    "status_reason": last.status_reason,
                    "attempt": last.attempt,
                    "attempts": [
                        {
                            "attempt": a.attempt,
                            "status": a.status,
                            "exit_code": a.exit_code,
                            "started_at": iso(a.started_at),
                            "finished_at": iso(a.finished_at),
                        }
                        for a in tried
                    ],
                    "exit_code": last.exit_code,
                    "started_at": iso(last.started_at),
                    "finished_at": iso(last.finished_at),
                    "reused_from": last.reused_from,
                    "metrics": metrics_by_name(m for m in self.metrics if m.step == name),
                    "outputs": dict(last.outputs),
                }
            )
        data["steps"] = steps
        return data


def metrics_by_name(metrics: Any) -> dict[str, Any]:
    """Name → value: the last scalar, a list for ``log_list``, the rows for ``log_row``, the
    stored path for an image. Repeated ``log`` calls of one name make a list, as Azure ML does."""
    out: dict[str, Any] = {}
    for metric in metrics:
        if metric.kind == "list":
            out[metric.name] = list(metric.value)
        elif metric.kind == "row":
            out.setdefault(metric.name, []).append(metric.value)
        elif metric.kind == "scalar" and metric.name in out:
            previous = out[metric.name]
            out[metric.name] = (
                [*previous, metric.value]
                if isinstance(previous, list)
                else [
                    previous,
                    metric.value,
                ]
            )
        else:
            out[metric.name] = metric.value
    return out


@dataclass
class ScheduleState:
    """What the store keeps of a schedule; ``override`` True/False beats the definition's
    ``enabled`` until the opposite command."""

    name: str
    source: str
    registered_at: datetime | None
    override: bool | None = None
    last_fire_time: datetime | None = None
    last_outcome: str | None = None
    last_run_id: str | None = None
    definition: dict[str, Any] | None = None


@dataclass
class FireRecord:
    """One fire of a schedule (a nominal time, or a dropped file) and what became of it."""

    schedule: str
    nominal_time: datetime | None
    path: str | None
    outcome: str  # claimed | started | queued | skipped | missed
    reason: str | None
    run_id: str | None
    created_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``fires --json`` object."""
        return {
            "schedule": self.schedule,
            "nominal_time": iso(self.nominal_time),
            "path": self.path,
            "outcome": self.outcome,
            "reason": self.reason,
            "run_id": self.run_id,
        }
