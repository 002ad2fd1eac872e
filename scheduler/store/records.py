"""Plain records that the store hands out: no ORM objects leave the store package.

These are also the JSON shapes users and scripts read (``runs --json``, ``show --json``), so the CLI and
the REST API render the same dict from the same record. Run and step statuses and fire outcomes
are ``StrEnum``s: each member equals its plain string, and JSON shows that string.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from scheduler.core.clock import iso
from scheduler.core.procinfo import Owner
from scheduler.core.runtimes import RunTimes

__all__ = [
    "AZURE_STATUS_CODES",
    "FINISHED_RUN_STATUSES",
    "FINISHED_STEP_STATUSES",
    "FIRE_OUTCOMES",
    "METRIC_KINDS",
    "RUN_STATUSES",
    "STEP_STATUSES",
    "FileFire",
    "FileKey",
    "FireOutcome",
    "FireRecord",
    "Metric",
    "ModelRecord",
    "Owner",
    "PublishedRecord",
    "RunDetail",
    "RunRecord",
    "RunStatus",
    "ScheduleState",
    "StepAttempt",
    "StepStatus",
    "TokenRecord",
    "metrics_by_name",
]


class RunStatus(StrEnum):
    """Where a run is: ``queued`` → ``running`` → one of the finished three."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"


class StepStatus(StrEnum):
    """Where one attempt of a step is; ``skipped`` and ``reused`` end it without running it."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    SKIPPED = "skipped"
    REUSED = "reused"


class FireOutcome(StrEnum):
    """What became of a fire: ``claimed`` until its run is recorded (``started`` or ``queued``),
    or ``skipped`` (refused, with a reason) or ``missed`` (left out by the catch-up rule)."""

    CLAIMED = "claimed"
    STARTED = "started"
    QUEUED = "queued"
    SKIPPED = "skipped"
    MISSED = "missed"


# Plain strings, in the enums' order, for choices and membership tests.
RUN_STATUSES: tuple[str, ...] = tuple(status.value for status in RunStatus)
STEP_STATUSES: tuple[str, ...] = tuple(status.value for status in StepStatus)
FINISHED_RUN_STATUSES: frozenset[str] = frozenset(
    {RunStatus.COMPLETED.value, RunStatus.FAILED.value, RunStatus.CANCELED.value}
)
FINISHED_STEP_STATUSES: frozenset[str] = frozenset(
    s.value for s in StepStatus if s not in (StepStatus.PENDING, StepStatus.RUNNING)
)
FIRE_OUTCOMES: frozenset[str] = frozenset(outcome.value for outcome in FireOutcome)
METRIC_KINDS: frozenset[str] = frozenset({"scalar", "list", "row", "image"})
# A run status in Azure ML's words (the REST API's StatusCode, the SDK's get_status()).
AZURE_STATUS_CODES = {
    "queued": "NotStarted",
    "running": "Running",
    "completed": "Finished",
    "failed": "Failed",
    "canceled": "Canceled",
}


def trigger_kind(trigger: str) -> str:
    """A trigger's kind: what it says before its first ':' (``file`` of ``file:inbox/a.csv``)."""
    return trigger.split(":", 1)[0]


@dataclass
class RunRecord:
    id: str
    pipeline: str
    version: str | None
    content_hash: str
    experiment: str
    status: RunStatus
    status_reason: str | None
    recovered: bool
    trigger: str
    schedule: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    parameters: dict[str, Any] = field(default_factory=dict)
    owner: Owner | None = None
    times: RunTimes | None = None  # what the run stands for; None only for a record made by hand

    @property
    def stands_for(self) -> RunTimes:
        """The run's times; a record without them stands for its creation."""
        return self.times or RunTimes(nominal_time=self.created_at)

    def to_json(self) -> dict[str, Any]:
        """The ``runs --json`` object."""
        times = self.times
        return {
            "id": self.id,
            "pipeline": self.pipeline,
            "version": self.version,
            "content_hash": self.content_hash,
            "experiment": self.experiment,
            "status": str(self.status),
            "status_reason": self.status_reason,
            "recovered": self.recovered,
            "trigger": self.trigger,
            "schedule": self.schedule,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "nominal_time": iso(times.nominal_time) if times else None,
            "interval_start": iso(times.interval_start) if times else None,
            "interval_end": iso(times.interval_end) if times else None,
        }


@dataclass
class StepAttempt:
    """One attempt of one step in one run (a row of ``step_runs``)."""

    run_id: str
    step: str
    attempt: int
    display_name: str
    type: str
    status: StepStatus
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
                    "status": str(last.status),
                    "status_reason": last.status_reason,
                    "attempt": last.attempt,
                    "attempts": [
                        {
                            "attempt": a.attempt,
                            "status": str(a.status),
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


def metrics_by_name(metrics: Iterable[Metric]) -> dict[str, Any]:
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
    last_outcome: FireOutcome | None = None
    last_run_id: str | None = None
    definition: dict[str, Any] | None = None
    schedule_id: str | None = None  # stable: kept by an update, even across a rename


@dataclass
class FireRecord:
    """One fire of a schedule (a nominal time, or a dropped file) and what became of it."""

    schedule: str
    nominal_time: datetime | None
    path: str | None
    outcome: FireOutcome
    reason: str | None
    run_id: str | None
    created_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``fires --json`` object."""
        return {
            "schedule": self.schedule,
            "nominal_time": iso(self.nominal_time),
            "path": self.path,
            "outcome": str(self.outcome),
            "reason": self.reason,
            "run_id": self.run_id,
        }


@dataclass(frozen=True, order=True)
class FileKey:
    """A dropped file as the ledger counts it; a changed file (new size or mtime) is a new key."""

    path: str  # from the datastore root, with forward slashes
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class FileFire:
    """One ledger row: a file as it was counted, and what became of it."""

    path: str
    size: int
    mtime_ns: int
    outcome: FireOutcome
    reason: str | None
    run_id: str | None
    created_at: datetime  # first seen

    @property
    def key(self) -> FileKey:
        return FileKey(self.path, self.size, self.mtime_ns)


@dataclass(frozen=True)
class PublishedRecord:
    """A published version of a pipeline; ``is_default`` when its endpoint runs it."""

    pipeline: str
    version: str
    description: str | None
    content_hash: str
    snapshot_dir: str
    published_at: datetime
    is_default: bool


@dataclass(frozen=True)
class TokenRecord:
    """An API token as stored: the hash of its secret, never the secret."""

    name: str
    token_id: str
    token_hash: str
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool


@dataclass(frozen=True)
class ModelRecord:
    """One version of a registered model: where its file or folder lives, and the run and step
    it came from (None when it was registered from a notebook or a command)."""

    name: str
    version: int
    path: str
    tags: dict[str, Any]
    properties: dict[str, Any]
    description: str | None
    run_id: str | None
    step: str | None
    created_at: datetime

    @property
    def id(self) -> str:
        """Azure ML's model id: ``name:version``."""
        return f"{self.name}:{self.version}"

    def to_json(self) -> dict[str, Any]:
        """The ``models --json`` object."""
        return {
            "name": self.name,
            "version": self.version,
            "path": self.path,
            "run_id": self.run_id,
            "step": self.step,
            "tags": dict(self.tags),
            "properties": dict(self.properties),
            "description": self.description,
            "created_at": iso(self.created_at),
        }


@dataclass(frozen=True)
class Leadership:
    """Who leads the daemons of a store, as the database says now (``server_now`` is the
    database's clock, which leases are counted on)."""

    epoch: int
    holder: str | None
    host: str | None
    pid: int | None
    since: datetime | None
    api_url: str | None
    lease_until: datetime | None
    server_now: datetime

    @property
    def lease_lapsed(self) -> bool:
        return self.lease_until is None or self.lease_until < self.server_now


@dataclass(frozen=True)
class DaemonBeat:
    """One daemon's last heartbeat: leader or standby."""

    name: str
    host: str
    pid: int
    started_at: datetime
    role: str
    epoch: int
    heartbeat_at: datetime
    lease_seconds: float
    schema_revision: str
    version: str
    api_url: str | None

    def to_json(self, now: datetime) -> dict[str, Any]:
        return {
            "name": self.name,
            "host": self.host,
            "pid": self.pid,
            "started_at": iso(self.started_at),
            "role": self.role,
            "epoch": self.epoch,
            "heartbeat_at": iso(self.heartbeat_at),
            "age_seconds": round(max(0.0, (now - self.heartbeat_at).total_seconds()), 3),
            "lease_seconds": self.lease_seconds,
            "schema_revision": self.schema_revision,
            "version": self.version,
            "api_url": self.api_url,
        }
