"""The store: the only object that reads or writes pipesched's database.

Each method is one short transaction that commits before it returns (the executor calls these
from its event loop, and a crash must never lose a step that was reported). Callers get plain
records (``scheduler.store.records``), never ORM objects.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Update, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scheduler.core.clock import SYSTEM_CLOCK, Clock
from scheduler.core.crashpoints import crashpoint
from scheduler.core.errors import NotFound
from scheduler.core.ids import new_run_id
from scheduler.store import queries
from scheduler.store.api_schedules import ApiScheduleStoreMixin
from scheduler.store.engine import WRITE_OPTION, make_engine
from scheduler.store.figures import FiguresStoreMixin
from scheduler.store.jsonvalues import json_safe
from scheduler.store.ledger import LedgerStoreMixin, settle_file_fires
from scheduler.store.migrate import ensure_schema
from scheduler.store.models import MetricRow, RunRow, StepRunRow
from scheduler.store.published import PublishedStoreMixin
from scheduler.store.records import (
    FINISHED_RUN_STATUSES,
    FINISHED_STEP_STATUSES,
    STEP_STATUSES,
    Metric,
    Owner,
    RunDetail,
    RunRecord,
    StepAttempt,
)
from scheduler.store.schedules import ScheduleStoreMixin, settle_fire

METRIC_KINDS = frozenset({"scalar", "list", "row", "image"})
_ID_ATTEMPTS = 5  # a new id collides only when two runs share a millisecond and 20 random bits
# Sessions here are fresh and hold no objects: nothing to synchronise after a bulk UPDATE.
_NO_SYNC = {"synchronize_session": False}


class Store(
    FiguresStoreMixin,
    ScheduleStoreMixin,
    ApiScheduleStoreMixin,
    LedgerStoreMixin,
    PublishedStoreMixin,
):
    """pipesched's database. ``Store.open(url)`` migrates it to the current schema first."""

    def __init__(self, url: str, engine: Engine, clock: Clock = SYSTEM_CLOCK) -> None:
        self.url = url
        # Public for the store's own tests and tools; everything else uses the methods.
        self.engine = engine
        self._write_engine = engine.execution_options(**{WRITE_OPTION: True})
        self._clock = clock

    @classmethod
    def open(cls, url: str, *, clock: Clock = SYSTEM_CLOCK) -> Store:
        engine = make_engine(url)
        try:
            ensure_schema(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(url, engine, clock)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.engine.url!r})"  # the URL's repr hides a password

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with Session(self.engine) as session, session.begin():
            yield session

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with Session(self._write_engine) as session, session.begin():
            yield session
            session.flush()
            crashpoint("in_write_transaction")  # a kill -9 before the commit loses nothing reported

    # -- runs --------------------------------------------------------------------------------

    def create_run(
        self,
        *,
        pipeline: str,
        content_hash: str,
        experiment: str,
        parameters: dict,
        trigger: str,
        steps: list[tuple[str, str, str]],
        version: str | None = None,
        schedule: str | None = None,
        owner: Owner | None = None,
        pipeline_version_id: int | None = None,
        fire: tuple[str, datetime] | None = None,
        run_id: str | None = None,
        file_fires: list[tuple[str, str, int, int]] | None = None,
    ) -> RunRecord:
        """Record a queued run and a pending first attempt of each (step id, display name,
        type), in declaration order, in one transaction. ``fire`` = (schedule, nominal time):
        the fire record this run settles, marked ``started`` with the run's id in the same
        transaction, so a crash never leaves a run and an unsettled fire apart. ``file_fires``
        = (schedule, path, size, mtime_ns) ledger rows settled the same way; ``run_id`` a
        pre-generated id (a batch folder is named after its run before the run exists)."""
        for tries_left in range(_ID_ATTEMPTS - 1, -1, -1):
            now = self._clock.now().astimezone(UTC)
            run = RunRow(
                id=run_id or new_run_id(now),
                pipeline=pipeline,
                version=version,
                pipeline_version_id=pipeline_version_id,
                content_hash=content_hash,
                experiment=experiment,
                status="queued",
                status_reason=None,
                recovered=False,
                trigger=trigger,
                schedule=schedule,
                parameters=parameters,
                created_at=now,
                **_owner_columns(owner),
            )
            try:
                with self._write() as session:
                    session.add(run)
                    session.flush()  # the run first: its steps refer to it
                    session.add_all(
                        StepRunRow(
                            run_id=run.id,
                            step=step,
                            attempt=1,
                            display_name=display_name,
                            type=step_type,
                            status="pending",
                            outputs={},
                        )
                        for step, display_name, step_type in steps
                    )
                    if fire is not None:
                        settle_fire(session, fire[0], fire[1], run.id, now)
                    for schedule_name in dict.fromkeys(f[0] for f in file_fires or ()):
                        keys = [(p, s, m) for n, p, s, m in file_fires or () if n == schedule_name]
                        settle_file_fires(session, schedule_name, keys, run.id, now)
                    return queries.run_record(run)
            except IntegrityError:
                if run_id or not tries_left or not self._run_exists(run.id):
                    raise  # not an id collision: a bad pipeline_version_id or repeated step
        raise AssertionError("unreachable")

    def _run_exists(self, run_id: str) -> bool:
        with self._read() as session:
            return session.get(RunRow, run_id) is not None

    def start_run(self, run_id: str, owner: Owner | None = None) -> None:
        values: dict[str, Any] = {"status": "running", "started_at": self._clock.now()}
        if owner is not None:
            values.update(_owner_columns(owner))
        self._update_run(run_id, values)

    def finish_run(self, run_id: str, status: str, reason: str | None = None) -> None:
        _check(status, FINISHED_RUN_STATUSES, "run status")
        now = self._clock.now()
        self._update_run(run_id, {"status": status, "status_reason": reason, "finished_at": now})

    def _update_run(self, run_id: str, values: dict[str, Any]) -> None:
        with self._write() as session:
            result = session.execute(
                update(RunRow).where(RunRow.id == run_id).values(**values),
                execution_options=_NO_SYNC,
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
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
        values = {
            "status": "running",
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
        with self._write() as session:
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
        _check(status, FINISHED_STEP_STATUSES, "step status")
        values: dict[str, Any] = {
            "status": status,
            "exit_code": exit_code,
            "status_reason": reason,
            "finished_at": self._clock.now(),
        }
        if outputs is not None:
            values["outputs"] = outputs
        self._update_attempt(run_id, step, attempt, values)

    def mark_step(self, run_id: str, step: str, *, status: str, reason: str | None = None) -> None:
        """Set the status of a step's latest attempt, e.g. a pending step skipped or canceled."""
        _check(status, STEP_STATUSES, "step status")
        values = {"status": status, "status_reason": reason, "finished_at": self._clock.now()}
        self._update_latest(run_id, step, values)

    def record_reuse(
        self, run_id: str, step: str, *, reused_from: str, fingerprint: str, outputs: dict[str, str]
    ) -> None:
        """The step's latest attempt took its outputs from an earlier identical step run."""
        now = self._clock.now()
        values = {
            "status": "reused",
            "reused_from": reused_from,
            "fingerprint": fingerprint,
            "outputs": outputs,
            "started_at": now,
            "finished_at": now,
        }
        self._update_latest(run_id, step, values)

    def _update_attempt(self, run_id: str, step: str, attempt: int, values: dict) -> None:
        statement = update(StepRunRow).where(StepRunRow.attempt == attempt)
        self._update_step(run_id, step, statement, values)

    def _update_latest(self, run_id: str, step: str, values: dict) -> None:
        latest = queries.latest_attempt_number(run_id, step)
        statement = update(StepRunRow).where(StepRunRow.attempt == latest)
        self._update_step(run_id, step, statement, values)

    def _update_step(self, run_id: str, step: str, statement: Update, values: dict) -> None:
        statement = statement.where(StepRunRow.run_id == run_id, StepRunRow.step == step)
        with self._write() as session:
            result = session.execute(statement.values(**values), execution_options=_NO_SYNC)
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFound(f"no such attempt of step {step!r} in run {run_id!r}")

    def add_metrics(self, run_id: str, metrics: list[Metric]) -> None:
        if not metrics:
            return
        for item in metrics:
            _check(item.kind, METRIC_KINDS, "metric kind")
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
        with self._write() as session:
            session.execute(insert(MetricRow), rows)

    # -- reads -------------------------------------------------------------------------------

    def find_reusable(self, fingerprint: str) -> StepAttempt | None:
        """The newest completed attempt with this fingerprint, if any."""
        with self._read() as session:
            return queries.find_reusable(session, fingerprint)

    def resolve_run_id(self, prefix: str) -> str:
        with self._read() as session:
            return queries.resolve_run_id(session, prefix)

    def get_run(self, run_id: str) -> RunRecord:
        with self._read() as session:
            return queries.run_record(queries.get_run_row(session, run_id))

    def get_run_detail(self, run_id: str) -> RunDetail:
        with self._read() as session:
            return queries.get_run_detail(session, run_id)

    def list_runs(
        self,
        *,
        pipeline: str | None = None,
        statuses: Sequence[str] = (),
        limit: int = 20,
        before: str | None = None,
        experiment: str | None = None,
    ) -> list[RunRecord]:
        """Newest first; ``limit`` 0 means all; ``before`` a run id, for paging."""
        statement = queries.list_runs_statement(
            pipeline=pipeline, statuses=statuses, limit=limit, before=before, experiment=experiment
        )
        with self._read() as session:
            return [queries.run_record(row) for row in session.scalars(statement)]

    def running_attempts(self, run_id: str) -> list[StepAttempt]:
        with self._read() as session:
            return queries.running_attempts(session, run_id)


def _owner_columns(owner: Owner | None) -> dict[str, Any]:
    if owner is None:
        return {"owner_host": None, "owner_pid": None, "owner_start_ticks": None}
    return {
        "owner_host": owner.host,
        "owner_pid": owner.pid,
        "owner_start_ticks": owner.start_ticks,
    }


def _check(value: str, allowed: frozenset[str] | tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"{value!r} is not a {what} ({', '.join(sorted(allowed))})")
