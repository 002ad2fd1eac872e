"""Reads of the store, and the one place rows become the plain records of ``scheduler.store.records``.

The statements are built by functions so that tests can ask the database how it runs them
(EXPLAIN QUERY PLAN) instead of trusting that an index is used.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ScalarSelect, Select, func, select
from sqlalchemy.orm import Session

from scheduler.core.errors import AmbiguousId, NotFound
from scheduler.core.ids import is_id_prefix, normalize_id, prefix_bounds
from scheduler.core.runtimes import RunTimes
from scheduler.store.models import MetricRow, RunRow, StepRunRow
from scheduler.store.records import (
    Metric,
    Owner,
    RunDetail,
    RunRecord,
    RunStatus,
    StepAttempt,
    StepStatus,
)

AMBIGUOUS_CANDIDATES = 5


def run_record(row: RunRow) -> RunRecord:
    owner = None
    if row.owner_host is not None and row.owner_pid is not None:
        owner = Owner(row.owner_host, row.owner_pid, row.owner_start_ticks or 0)
    return RunRecord(
        id=row.id,
        pipeline=row.pipeline,
        version=row.version,
        content_hash=row.content_hash,
        experiment=row.experiment,
        status=RunStatus(row.status),
        status_reason=row.status_reason,
        recovered=row.recovered,
        trigger=row.trigger,
        schedule=row.schedule,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        parameters=dict(row.parameters or {}),
        owner=owner,
        times=run_times(row),
    )


def run_times(row: RunRow) -> RunTimes:
    """What the run stands for; a row without a nominal time stands for its creation."""
    return RunTimes(
        nominal_time=row.nominal_time or row.created_at,
        interval_start=row.interval_start if row.interval_end is not None else None,
        interval_end=row.interval_end if row.interval_start is not None else None,
        zone=row.nominal_zone,
    )


def step_attempt(row: StepRunRow) -> StepAttempt:
    return StepAttempt(
        run_id=row.run_id,
        step=row.step,
        attempt=row.attempt,
        display_name=row.display_name,
        type=row.type,
        status=StepStatus(row.status),
        status_reason=row.status_reason,
        exit_code=row.exit_code,
        started_at=row.started_at,
        finished_at=row.finished_at,
        pid=row.pid,
        pgid=row.pgid,
        proc_start_ticks=row.proc_start_ticks,
        log_path=row.log_path,
        workdir=row.workdir,
        fingerprint=row.fingerprint,
        reused_from=row.reused_from,
        outputs=dict(row.outputs or {}),
    )


def metric(row: MetricRow) -> Metric:
    return Metric(
        step=row.step,
        attempt=row.attempt,
        name=row.name,
        kind=row.kind,
        value=row.value,
        logged_at=row.logged_at,
    )


def list_runs_statement(
    *,
    pipeline: str | None = None,
    statuses: Sequence[str] = (),
    limit: int = 20,
    before: str | None = None,
    experiment: str | None = None,
    schedule: str | None = None,
    trigger: str | None = None,
) -> Select[RunRow]:
    """Newest first. Ids sort by time, so ordering and paging use the primary key and the
    (pipeline, id) / (status, id) indexes. An experiment alone has no index: the newest-first
    walk of the primary key stops after ``limit`` matches (see tests/test_api_sdk_paths.py)."""
    statement = select(RunRow).order_by(RunRow.id.desc())
    if pipeline is not None:
        statement = statement.where(RunRow.pipeline == pipeline)
    if statuses:
        statement = statement.where(RunRow.status.in_(list(statuses)))
    if experiment is not None:
        statement = statement.where(RunRow.experiment == experiment)
    if schedule is not None:
        statement = statement.where(RunRow.schedule == schedule)
    if trigger is not None:  # a whole trigger (``schedule:nightly``) or a kind (``schedule``)
        column = RunRow.trigger if ":" in trigger else RunRow.trigger_kind
        statement = statement.where(column == trigger)
    if before is not None:
        statement = statement.where(RunRow.id < before)
    if limit:
        statement = statement.limit(limit)
    return statement


def get_run_row(session: Session, run_id: str) -> RunRow:
    row = session.get(RunRow, run_id)
    if row is None:
        raise NotFound(f"no run {run_id!r}")
    return row


def resolve_run_id(session: Session, prefix: str) -> str:
    """Git's rule: any prefix that matches exactly one run."""
    wanted = normalize_id(prefix)
    if not is_id_prefix(wanted):
        raise NotFound(f"no run matches {prefix!r}", hint="run ids use 0-9 and a-z")
    low, high = prefix_bounds(wanted)
    ids = list(
        session.scalars(
            select(RunRow.id)
            .where(RunRow.id.between(low, high))
            .order_by(RunRow.id.desc())
            .limit(AMBIGUOUS_CANDIDATES + 1)
        )
    )
    if not ids:
        raise NotFound(f"no run matches {prefix!r}", hint="pipesched runs lists recent runs")
    if len(ids) > 1:
        shown = ", ".join(ids[:AMBIGUOUS_CANDIDATES])
        more = ", ..." if len(ids) > AMBIGUOUS_CANDIDATES else ""
        raise AmbiguousId(
            f"more than one run matches {prefix!r}", hint=f"candidates: {shown}{more}"
        )
    return ids[0]


def get_run_detail(session: Session, run_id: str) -> RunDetail:
    run = run_record(get_run_row(session, run_id))
    attempts = session.scalars(
        select(StepRunRow)
        .where(StepRunRow.run_id == run_id)
        # First start; pending rows last, in declaration order (their insertion order).
        .order_by(StepRunRow.started_at.asc().nulls_last(), StepRunRow.id)
    )
    metrics = session.scalars(
        select(MetricRow)
        .where(MetricRow.run_id == run_id)
        .order_by(MetricRow.logged_at, MetricRow.id)
    )
    return RunDetail(
        run=run,
        attempts=[step_attempt(row) for row in attempts],
        metrics=[metric(row) for row in metrics],
    )


def find_reusable(session: Session, fingerprint: str) -> StepAttempt | None:
    row = session.scalars(
        select(StepRunRow)
        .where(
            StepRunRow.fingerprint == fingerprint, StepRunRow.status == StepStatus.COMPLETED.value
        )
        .order_by(StepRunRow.finished_at.desc().nulls_last(), StepRunRow.id.desc())
        .limit(1)
    ).first()
    return step_attempt(row) if row is not None else None


def running_attempts(session: Session, run_id: str) -> list[StepAttempt]:
    rows = session.scalars(
        select(StepRunRow)
        .where(StepRunRow.run_id == run_id, StepRunRow.status == StepStatus.RUNNING.value)
        .order_by(StepRunRow.id)
    )
    return [step_attempt(row) for row in rows]


def latest_attempt_number(run_id: str, step: str) -> ScalarSelect[int]:
    """A scalar subquery: the highest attempt number of a step (its latest row)."""
    return (
        select(func.max(StepRunRow.attempt))
        .where(StepRunRow.run_id == run_id, StepRunRow.step == step)
        .scalar_subquery()
    )
