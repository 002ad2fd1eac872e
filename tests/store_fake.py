"""An in-memory store: plain dicts behind the Protocols of ``scheduler.store.protocols``.

``InMemoryStore`` implements ``DispatchStore`` (and so ``ExecutorStore``), ``FireStore``,
``RecoveryStore`` and ``FileLedgerStore``, so a ``Dispatcher``, a ``FireHandler`` or recovery can
be unit-tested without a database file or a daemon subprocess. It is kept honest by
``tests/test_store_fake_contract.py``, which runs the same assertions against it and a real
SQLite store. It is single-threaded and keeps no schedule states; nothing else of ``Store``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from scheduler.core.clock import SYSTEM_CLOCK, Clock
from scheduler.core.errors import NotFound
from scheduler.core.ids import new_run_id
from scheduler.core.runtimes import RunTimes, request_times
from scheduler.store.health import StoreHealth
from scheduler.store.protocols import DispatchStore, FileLedgerStore, FireStore, RecoveryStore
from scheduler.store.records import (
    FINISHED_RUN_STATUSES,
    FINISHED_STEP_STATUSES,
    FIRE_OUTCOMES,
    METRIC_KINDS,
    STEP_STATUSES,
    FileFire,
    FileKey,
    FireOutcome,
    FireRecord,
    Metric,
    Owner,
    RunDetail,
    RunRecord,
    RunStatus,
    ScheduleState,
    StepAttempt,
    StepStatus,
)


@dataclass
class _Fire:
    id: int
    schedule: str
    nominal_time: datetime | None
    file: FileKey | None
    outcome: FireOutcome
    reason: str | None
    run_id: str | None
    created_at: datetime
    updated_at: datetime


@dataclass
class _Attempt:
    id: int
    row: StepAttempt


@dataclass
class _Run:
    record: RunRecord
    pipeline_version_id: int | None = None
    metrics: list[tuple[int, Metric]] = field(default_factory=list)


class InMemoryStore:
    """The store's behaviour for the dispatcher, fires, the file ledger and recovery, in dicts."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self.runs: dict[str, _Run] = {}
        self.attempts: list[_Attempt] = []
        self.fires: list[_Fire] = []
        self.versions: dict[tuple[str, str, str | None], int] = {}
        self._ids = itertools.count(1)
        self.health = StoreHealth()  # never unwritable: dicts cannot be locked or full

    def _now(self) -> datetime:
        return self.clock.now().astimezone(UTC)

    # -- runs --------------------------------------------------------------------------------

    def ensure_pipeline_version(
        self,
        pipeline: str,
        content_hash: str,
        definition: dict[str, Any],
        version: str | None = None,
    ) -> int:
        key = (pipeline, content_hash, version)
        return self.versions.setdefault(key, len(self.versions) + 1)

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
        now = self._now()
        new_id = run_id or new_run_id(now)
        if new_id in self.runs or len({s[0] for s in steps}) != len(steps):
            raise ValueError(f"run {new_id!r} exists, or a step is repeated")
        record = RunRecord(
            id=new_id,
            pipeline=pipeline,
            version=version,
            content_hash=content_hash,
            experiment=experiment,
            status=RunStatus.QUEUED,
            status_reason=None,
            recovered=False,
            trigger=trigger,
            schedule=schedule,
            created_at=now,
            started_at=None,
            finished_at=None,
            parameters=dict(parameters),
            owner=owner,
            times=times or request_times(now),
        )
        self.runs[new_id] = _Run(record, pipeline_version_id)
        for step, display_name, step_type in steps:
            row = StepAttempt(new_id, step, 1, display_name, step_type, StepStatus.PENDING)
            self.attempts.append(_Attempt(next(self._ids), row))
        settled = self._fires_at(fire[0], fire[1]) if fire is not None else []
        for name, path, size, mtime_ns in file_fires or ():
            key = FileKey(path, size, mtime_ns)
            settled += [f for f in self._ledger(name) if f.file == key]
        for fired in settled:
            fired.outcome, fired.reason, fired.run_id = FireOutcome.STARTED, None, new_id
            fired.updated_at = now
        return replace(record)

    def _run(self, run_id: str) -> _Run:
        found = self.runs.get(run_id)
        if found is None:
            raise NotFound(f"no run {run_id!r}")
        return found

    def start_run(self, run_id: str, owner: Owner | None = None) -> None:
        run = self._run(run_id)
        run.record.status, run.record.started_at = RunStatus.RUNNING, self._now()
        if owner is not None:
            run.record.owner = owner

    def finish_run(self, run_id: str, status: str, reason: str | None = None) -> None:
        _check(status, FINISHED_RUN_STATUSES, "run status")
        run = self._run(run_id)
        run.record.status, run.record.status_reason = RunStatus(status), reason
        run.record.finished_at = self._now()

    def mark_recovered(self, run_id: str) -> None:
        if run_id in self.runs:
            self.runs[run_id].record.recovered = True

    def get_run_detail(self, run_id: str) -> RunDetail:
        run = self._run(run_id)
        mine = [a for a in self.attempts if a.row.run_id == run_id]
        mine.sort(key=lambda a: (a.row.started_at is None, a.row.started_at or self._now(), a.id))
        metrics = sorted(run.metrics, key=lambda item: (item[1].logged_at, item[0]))
        return RunDetail(
            run=replace(run.record, parameters=dict(run.record.parameters)),
            attempts=[_copy(a.row) for a in mine],
            metrics=[replace(m) for _, m in metrics],
        )

    def open_runs(self) -> list[RunRecord]:
        unfinished = (RunStatus.QUEUED, RunStatus.RUNNING)
        return [
            replace(r.record) for _, r in sorted(self.runs.items()) if r.record.status in unfinished
        ]

    # -- step attempts -----------------------------------------------------------------------

    def _steps(self, run_id: str, step: str) -> list[_Attempt]:
        return sorted(
            (a for a in self.attempts if a.row.run_id == run_id and a.row.step == step),
            key=lambda a: a.row.attempt,
        )

    def _attempt(self, run_id: str, step: str, attempt: int | None) -> StepAttempt:
        rows = self._steps(run_id, step)
        if attempt is not None:
            rows = [a for a in rows if a.row.attempt == attempt]
        if not rows:
            raise NotFound(f"no such attempt of step {step!r} in run {run_id!r}")
        return rows[-1].row

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
        if attempt == 1:
            row = self._attempt(run_id, step, 1)
        else:
            rows = self._steps(run_id, step)
            if not rows:
                raise NotFound(f"no step {step!r} in run {run_id!r}")
            first = rows[0].row
            row = StepAttempt(run_id, step, attempt, first.display_name, first.type, first.status)
            self.attempts.append(_Attempt(next(self._ids), row))
        row.status, row.started_at = StepStatus.RUNNING, self._now()
        row.fingerprint, row.log_path, row.workdir = fingerprint, log_path, workdir

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
        row = self._attempt(run_id, step, attempt)
        row.pid, row.pgid, row.proc_start_ticks = pid, pgid, proc_start_ticks

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
        row = self._attempt(run_id, step, attempt)
        row.status, row.exit_code, row.status_reason = StepStatus(status), exit_code, reason
        row.finished_at = self._now()
        if outputs is not None:
            row.outputs = dict(outputs)

    def mark_step(self, run_id: str, step: str, *, status: str, reason: str | None = None) -> None:
        _check(status, frozenset(STEP_STATUSES), "step status")
        row = self._attempt(run_id, step, None)
        row.status, row.status_reason, row.finished_at = StepStatus(status), reason, self._now()

    def record_reuse(
        self, run_id: str, step: str, *, reused_from: str, fingerprint: str, outputs: dict[str, str]
    ) -> None:
        row = self._attempt(run_id, step, None)
        now = self._now()
        row.status, row.reused_from, row.fingerprint = StepStatus.REUSED, reused_from, fingerprint
        row.outputs, row.started_at, row.finished_at = dict(outputs), now, now

    def find_reusable(self, fingerprint: str) -> StepAttempt | None:
        done = [
            a
            for a in self.attempts
            if a.row.fingerprint == fingerprint and a.row.status == StepStatus.COMPLETED
        ]
        if not done:
            return None
        newest = max(done, key=lambda a: (a.row.finished_at is not None, a.row.finished_at, a.id))
        return _copy(newest.row)

    def add_metrics(self, run_id: str, metrics: Sequence[Metric]) -> None:
        for item in metrics:
            _check(item.kind, METRIC_KINDS, "metric kind")
        run = self._run(run_id)
        run.metrics.extend((next(self._ids), replace(item)) for item in metrics)

    def running_attempts(self, run_id: str) -> list[StepAttempt]:
        return [
            _copy(a.row)
            for a in sorted(self.attempts, key=lambda a: a.id)
            if a.row.run_id == run_id and a.row.status == StepStatus.RUNNING
        ]

    # -- fires of time schedules -------------------------------------------------------------

    def _fires_at(self, schedule: str, nominal_time: datetime) -> list[_Fire]:
        return [f for f in self.fires if f.schedule == schedule and f.nominal_time == nominal_time]

    def _add_fire(
        self,
        schedule: str,
        nominal_time: datetime | None,
        file: FileKey | None,
        outcome: str,
        reason: str | None,
    ) -> None:
        now = self._now()
        self.fires.append(
            _Fire(
                next(self._ids),
                schedule,
                nominal_time,
                file,
                FireOutcome(outcome),
                reason,
                None,
                now,
                now,
            )
        )

    def claim_fire(
        self,
        schedule: str,
        nominal_time: datetime,
        *,
        outcome: str = FireOutcome.CLAIMED.value,
        reason: str | None = None,
    ) -> bool:
        _check(outcome, FIRE_OUTCOMES, "fire outcome")
        if self._fires_at(schedule, nominal_time):
            return False
        self._add_fire(schedule, nominal_time, None, outcome, reason)
        return True

    def record_fires(
        self, schedule: str, nominal_times: Iterable[datetime], *, outcome: str, reason: str | None
    ) -> int:
        _check(outcome, FIRE_OUTCOMES, "fire outcome")
        new = 0
        for nominal in nominal_times:
            if not self._fires_at(schedule, nominal):
                self._add_fire(schedule, nominal, None, outcome, reason)
                new += 1
        return new

    def update_fire(
        self,
        schedule: str,
        nominal_time: datetime,
        *,
        outcome: str,
        reason: str | None = None,
        run_id: str | None = None,
    ) -> None:
        _check(outcome, FIRE_OUTCOMES, "fire outcome")
        for row in self._fires_at(schedule, nominal_time):
            row.outcome, row.reason, row.run_id = FireOutcome(outcome), reason, run_id
            row.updated_at = self._now()

    def fires_with_outcome(self, outcome: str) -> list[FireRecord]:
        return [_fire_record(f) for f in self.fires if f.outcome == outcome]

    def list_fires(self, schedule: str | None = None, *, limit: int = 20) -> list[FireRecord]:
        """Newest first; ``limit`` 0 = all (as ``Store.list_fires``, for assertions)."""
        rows = [f for f in reversed(self.fires) if schedule is None or f.schedule == schedule]
        return [_fire_record(f) for f in (rows[:limit] if limit else rows)]

    # -- the file-drop ledger ----------------------------------------------------------------

    def _ledger(self, schedule: str) -> list[_Fire]:
        return [f for f in self.fires if f.schedule == schedule and f.file is not None]

    def schedule_states(self) -> dict[str, ScheduleState]:
        """The fake keeps no schedule registrations: a fire counts from its own time."""
        return {}

    def claim_files(self, schedule: str, files: Iterable[FileKey]) -> list[FileKey]:
        known = self.known_files(schedule, list(files))
        new = [key for key in dict.fromkeys(files) if key not in known]
        for key in new:
            self._add_fire(schedule, None, key, FireOutcome.CLAIMED, None)
        return new

    def known_files(self, schedule: str, files: Sequence[FileKey]) -> set[FileKey]:
        held = {f.file for f in self._ledger(schedule)}
        return {key for key in files if key in held}

    def claimed_files(self, schedule: str) -> list[FileKey]:
        return [f.file for f in self._ledger(schedule) if f.file and f.outcome == "claimed"]

    def mark_files(
        self, schedule: str, files: Sequence[FileKey], *, outcome: str, reason: str | None = None
    ) -> None:
        _check(outcome, FIRE_OUTCOMES, "fire outcome")
        wanted = set(files)
        for row in self._ledger(schedule):
            if row.file in wanted:
                row.outcome, row.reason, row.updated_at = FireOutcome(outcome), reason, self._now()

    def last_file(self, schedule: str) -> str | None:
        started = [f for f in self._ledger(schedule) if f.outcome == FireOutcome.STARTED]
        if not started:
            return None
        newest = max(started, key=lambda f: (f.updated_at, f.id))
        return newest.file.path if newest.file else None

    def list_file_fires(self, schedule: str, *, limit: int = 0) -> list[FileFire]:
        """The schedule's ledger, oldest first; ``limit`` 0 = all (as ``Store.list_file_fires``)."""
        rows = [
            FileFire(key.path, key.size, key.mtime_ns, f.outcome, f.reason, f.run_id, f.created_at)
            for f in self._ledger(schedule)
            if (key := f.file) is not None
        ]
        return rows[:limit] if limit else rows


def _copy(row: StepAttempt) -> StepAttempt:
    return replace(row, outputs=dict(row.outputs))


def _fire_record(row: _Fire) -> FireRecord:
    return FireRecord(
        schedule=row.schedule,
        nominal_time=row.nominal_time,
        path=row.file.path if row.file else None,
        outcome=row.outcome,
        reason=row.reason,
        run_id=row.run_id,
        created_at=row.created_at,
    )


def _check(value: str, allowed: frozenset[str], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"{value!r} is not a {what} ({', '.join(sorted(allowed))})")


def _implements(
    fake: InMemoryStore,
) -> tuple[DispatchStore, FireStore, RecoveryStore, FileLedgerStore]:
    """Never called: mypy checks here that the fake satisfies the four Protocols."""
    return fake, fake, fake, fake
