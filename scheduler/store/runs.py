"""Runs, their step attempts and their metrics: the executor's record of what ran.

Each method is one short transaction that commits before it returns, so a crash never loses a
step that was reported. A run is recorded ``queued`` with a pending first attempt of every step
in one transaction, together with the fire record or file-ledger rows it settles. Reads hand
out the plain records of ``scheduler.store.records``, never ORM objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import Update, insert, select, update
from sqlalchemy.exc import IntegrityError

from scheduler.core.clock import Clock
from scheduler.core.errors import NotFound
from scheduler.core.ids import new_run_id
from scheduler.core.runtimes import RunTimes, request_times
from scheduler.store import queries
from scheduler.store.fire_records import settle_fire
from scheduler.store.jsonvalues import json_safe
from scheduler.store.ledger import settle_file_fires
from scheduler.store.models import MetricRow, RunRow, StepRunRow
from scheduler.store.records import (
    FINISHED_RUN_STATUSES,
    FINISHED_STEP_STATUSES,
    METRIC_KINDS,
    STEP_STATUSES,
    FileKey,
    Metric,
    Owner,
    RunDetail,
    RunRecord,
    RunStatus,
    StepAttempt,
    StepStatus,
    trigger_kind,
)
from scheduler.store.sessions import NO_SYNC, Sessions, rowcount

_ANY_STEP_STATUS = frozenset(STEP_STATUSES)
_IDS_PER_QUERY = 500  # SQLite's limit on a statement's parameters is far above
_ID_ATTEMPTS = 5  # a new id collides only when two runs share a millisecond and 20 random bits
E = TypeVar("E", bound=StrEnum)


class RunRepository:
    """Runs and step attempts: recorded by the dispatcher, advanced by the executor."""

    def __init__(self, sessions: Sessions, clock: Clock) -> None:
        self._sessions, self._clock = sessions, clock

    # -- runs --------------------------------------------------------------------------------

    def create_run(
        self,
        *,
        pipeline: str,
        content_hash: str,
        experiment: str,
        parameters: Mapping[str, Any],
        trigger: str,
        steps: Sequence[tuple[str, str, str]],
        version: str | None = None,
        schedule: str | None = None,
        owner: Owner | None = None,
        pipeline_version_id: int | None = None,
        fire: tuple[str, datetime] | None = None,
        run_id: str | None = None,
        file_fires: Sequence[tuple[str, str, int, int]] | None = None,
        times: RunTimes | None = None,
    ) -> RunRecord:
        """Record a queued run and a pending first attempt of each (step id, display name,
        type), in declaration order, in one transaction. ``fire`` = (schedule, nominal time):
        the fire record this run settles, marked ``started`` with the run's id in the same
        transaction, so a crash never leaves a run and an unsettled fire apart. ``file_fires``
        = (schedule, path, size, mtime_ns) ledger rows settled the same way; ``run_id`` a
        pre-generated id (a batch folder is named after its run before the run exists).
        ``times``: what the run stands for; None: the moment it is recorded, no interval."""
        files: dict[str, list[FileKey]] = {}
        for name, path, size, mtime_ns in file_fires or ():
            files.setdefault(name, []).append(FileKey(path, size, mtime_ns))
        for tries_left in range(_ID_ATTEMPTS - 1, -1, -1):
            now = self._clock.now().astimezone(UTC)
            run = RunRow(
                id=run_id or new_run_id(now),
                pipeline=pipeline,
                version=version,
                pipeline_version_id=pipeline_version_id,
                content_hash=content_hash,
                experiment=experiment,
                status=RunStatus.QUEUED.value,
                status_reason=None,
                recovered=False,
                trigger=trigger,
                trigger_kind=trigger_kind(trigger),
                schedule=schedule,
                parameters=dict(parameters),
                created_at=now,
                **_owner_columns(owner),
                **_time_columns(times or request_times(now)),
            )
            try:
                with self._sessions.write() as session:
                    session.add(run)
                    session.flush()  # the run first: its steps refer to it
                    session.add_all(
                        StepRunRow(
                            run_id=run.id,
                            step=step,
                            attempt=1,
                            display_name=display_name,
                            type=step_type,
                            status=StepStatus.PENDING.value,
                            outputs={},
                        )
                        for step, display_name, step_type in steps
                    )
                    if fire is not None:
                        settle_fire(session, fire[0], fire[1], run.id, now)
                    for schedule_name, keys in files.items():
                        settle_file_fires(session, schedule_name, keys, run.id, now)
                    return queries.run_record(run)
            except IntegrityError:
                if run_id or not tries_left or not self._run_exists(run.id):
                    raise  # not an id collision: a bad pipeline_version_id or repeated step
        raise AssertionError("unreachable")

    def _run_exists(self, run_id: str) -> bool:
        with self._sessions.read() as session:
            return session.get(RunRow, run_id) is not None

    def start_run(self, run_id: str, owner: Owner | None = None) -> None:
        values: dict[str, object] = {
            "status": RunStatus.RUNNING.value,
            "started_at": self._clock.now(),
        }
        if owner is not None:
            values.update(_owner_columns(owner))
        self._update_run(run_id, values)

    def finish_run(self, run_id: str, status: str, reason: str | None = None) -> None:
        finished = _checked(RunStatus, status, FINISHED_RUN_STATUSES, "run status")
        values = {"status": finished, "status_reason": reason, "finished_at": self._clock.now()}
        self._update_run(run_id, values)

    def mark_recovered(self, run_id: str) -> None:
        """A queued run taken over by a new daemon after its owner died: same id, recovered."""
        with self._sessions.write() as session:
            session.execute(
                update(RunRow).where(RunRow.id == run_id).values(recovered=True),
                execution_options=NO_SYNC,
            )

    def _update_run(self, run_id: str, values: Mapping[str, object]) -> None:
        with self._sessions.write() as session:
            result = session.execute(
                update(RunRow).where(RunRow.id == run_id).values(**values),
                execution_options=NO_SYNC,
            )
            if rowcount(result) == 0:
                raise NotFound(f"no run {run_id!r}")

    # -- step attempts -----------------------------------------------------------------------

    def begin_attempt(
        self,
        run_id: str,
        step: str,
        attempt: int,
        *,
        fingerprint: str | None = None,
        log_path: str | None = None,
        workdir: str | None = None,
    ) -> None:
        """Mark an attempt running. Attempt 1 is the pending row made with the run; a retry
        is a new row that copies the step's display name and type."""
        values: dict[str, object] = {
            "status": StepStatus.RUNNING.value,
            "started_at": self._clock.now(),
            "fingerprint": fingerprint,
            "log_path": log_path,
            "workdir": workdir,
        }
        if attempt == 1:
            self._update_step(
                run_id, step, update(StepRunRow).where(StepRunRow.attempt == 1), values
            )
            return
        with self._sessions.write() as session:
            first = session.scalars(
                select(StepRunRow)
                .where(StepRunRow.run_id == run_id, StepRunRow.step == step)
                .order_by(StepRunRow.attempt)
                .limit(1)
            ).first()
            if first is None:
                raise NotFound(f"no step {step!r} in run {run_id!r}")
            session.execute(
                insert(StepRunRow).values(
                    run_id=run_id,
                    step=step,
                    attempt=attempt,
                    display_name=first.display_name,
                    type=first.type,
                    outputs={},
                    **values,
                )
            )

    def set_attempt_process(
        self,
        run_id: str,
        step: str,
        attempt: int,
        *,
        pid: int,
        pgid: int,
        proc_start_ticks: int | None,
    ) -> None:
        values = {"pid": pid, "pgid": pgid, "proc_start_ticks": proc_start_ticks}
        self._update_attempt(run_id, step, attempt, values)

    def end_attempt(
        self,
        run_id: str,
        step: str,
        attempt: int,
        *,
        status: str,
        exit_code: int | None = None,
        reason: str | None = None,
        outputs: dict[str, str] | None = None,
    ) -> None:
        values: dict[str, object] = {
            "status": _checked(StepStatus, status, FINISHED_STEP_STATUSES, "step status"),
            "exit_code": exit_code,
            "status_reason": reason,
            "finished_at": self._clock.now(),
        }
        if outputs is not None:
            values["outputs"] = outputs
        self._update_attempt(run_id, step, attempt, values)

    def mark_step(self, run_id: str, step: str, *, status: str, reason: str | None = None) -> None:
        """Set the status of a step's latest attempt, e.g. a pending step skipped or canceled."""
        values = {
            "status": _checked(StepStatus, status, _ANY_STEP_STATUS, "step status"),
            "status_reason": reason,
            "finished_at": self._clock.now(),
        }
        self._update_latest(run_id, step, values)

    def record_reuse(
        self, run_id: str, step: str, *, reused_from: str, fingerprint: str, outputs: dict[str, str]
    ) -> None:
        """The step's latest attempt took its outputs from an earlier identical step run."""
        now = self._clock.now()
        values = {
            "status": StepStatus.REUSED.value,
            "reused_from": reused_from,
            "fingerprint": fingerprint,
            "outputs": outputs,
            "started_at": now,
            "finished_at": now,
        }
        self._update_latest(run_id, step, values)

    def _update_attempt(
        self, run_id: str, step: str, attempt: int, values: Mapping[str, object]
    ) -> None:
        statement = update(StepRunRow).where(StepRunRow.attempt == attempt)
        self._update_step(run_id, step, statement, values)

    def _update_latest(self, run_id: str, step: str, values: Mapping[str, object]) -> None:
        latest = queries.latest_attempt_number(run_id, step)
        statement = update(StepRunRow).where(StepRunRow.attempt == latest)
        self._update_step(run_id, step, statement, values)

    def _update_step(
        self, run_id: str, step: str, statement: Update, values: Mapping[str, object]
    ) -> None:
        statement = statement.where(StepRunRow.run_id == run_id, StepRunRow.step == step)
        with self._sessions.write() as session:
            result = session.execute(statement.values(**values), execution_options=NO_SYNC)
            if rowcount(result) == 0:
                raise NotFound(f"no such attempt of step {step!r} in run {run_id!r}")

    def add_metrics(self, run_id: str, metrics: Sequence[Metric]) -> None:
        if not metrics:
            return
        for item in metrics:
            _checked_value(item.kind, METRIC_KINDS, "metric kind")
        rows = [
            {
                "run_id": run_id,
                "step": item.step,
                "attempt": item.attempt,
                "name": item.name,
                "kind": item.kind,
                "value": json_safe(item.value),
                "logged_at": item.logged_at,
            }
            for item in metrics
        ]
        with self._sessions.write() as session:
            session.execute(insert(MetricRow), rows)

    # -- reads -------------------------------------------------------------------------------

    def find_reusable(self, fingerprint: str) -> StepAttempt | None:
        """The newest completed attempt with this fingerprint, if any."""
        with self._sessions.read() as session:
            return queries.find_reusable(session, fingerprint)

    def resolve_run_id(self, prefix: str) -> str:
        with self._sessions.read() as session:
            return queries.resolve_run_id(session, prefix)

    def get_run(self, run_id: str) -> RunRecord:
        with self._sessions.read() as session:
            return queries.run_record(queries.get_run_row(session, run_id))

    def get_run_detail(self, run_id: str) -> RunDetail:
        with self._sessions.read() as session:
            return queries.get_run_detail(session, run_id)

    def list_runs(
        self,
        *,
        pipeline: str | None = None,
        statuses: Sequence[str] = (),
        limit: int = 20,
        before: str | None = None,
        experiment: str | None = None,
        schedule: str | None = None,
        trigger: str | None = None,
    ) -> list[RunRecord]:
        """Newest first; ``limit`` 0 means all; ``before`` a run id, for paging."""
        statement = queries.list_runs_statement(
            pipeline=pipeline,
            statuses=statuses,
            limit=limit,
            before=before,
            experiment=experiment,
            schedule=schedule,
            trigger=trigger,
        )
        with self._sessions.read() as session:
            return [queries.run_record(row) for row in session.scalars(statement)]

    def run_metrics(self, run_ids: Sequence[str]) -> dict[str, list[Metric]]:
        """Run id → its metrics in the order they were logged (runs without any are left out),
        in one query per batch of ids rather than one per run."""
        found: dict[str, list[Metric]] = {}
        with self._sessions.read() as session:
            for start in range(0, len(run_ids), _IDS_PER_QUERY):
                batch = list(run_ids[start : start + _IDS_PER_QUERY])
                rows = session.scalars(
                    select(MetricRow)
                    .where(MetricRow.run_id.in_(batch))
                    .order_by(MetricRow.logged_at, MetricRow.id)
                )
                for row in rows:
                    found.setdefault(row.run_id, []).append(queries.metric(row))
        return found

    def running_attempts(self, run_id: str) -> list[StepAttempt]:
        with self._sessions.read() as session:
            return queries.running_attempts(session, run_id)

    def open_runs(self) -> list[RunRecord]:
        """Runs not finished (queued or running), oldest first."""
        unfinished = (RunStatus.QUEUED.value, RunStatus.RUNNING.value)
        with self._sessions.read() as session:
            rows = session.scalars(
                select(RunRow).where(RunRow.status.in_(unfinished)).order_by(RunRow.id)
            )
            return [queries.run_record(row) for row in rows]


def _owner_columns(owner: Owner | None) -> dict[str, object]:
    if owner is None:
        return {"owner_host": None, "owner_pid": None, "owner_start_ticks": None}
    return {
        "owner_host": owner.host,
        "owner_pid": owner.pid,
        "owner_start_ticks": owner.start_ticks,
    }


def _time_columns(times: RunTimes) -> dict[str, object]:
    return {
        "nominal_time": times.nominal_time,
        "interval_start": times.interval_start,
        "interval_end": times.interval_end,
        "nominal_zone": times.zone,
    }


def _checked(enum: type[E], value: str, allowed: frozenset[str], what: str) -> str:
    """``value`` as the plain string the column keeps; ValueError unless it is ``allowed``."""
    _checked_value(value, allowed, what)
    return enum(value).value


def _checked_value(value: str, allowed: frozenset[str], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"{value!r} is not a {what} ({', '.join(sorted(allowed))})")
