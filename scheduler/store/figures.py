"""Aggregate reads for ``/metrics``: the store is the truth, computed at each scrape."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from scheduler.store.models import FireRow, PrunedCountRow, RunRow, StepRunRow
from scheduler.store.records import FireOutcome, RunStatus, StepStatus
from scheduler.store.sessions import Sessions

# Rows read per round trip when a scrape catches up on many step attempts.
_CHUNK = 10_000


@dataclass(frozen=True)
class StepAttemptTimes:
    """One step attempt as the duration histogram sees it."""

    id: int
    pipeline: str
    status: str
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def settled(self) -> bool:
        """Its status will not change again (it neither waits nor runs)."""
        return self.status not in (StepStatus.PENDING.value, StepStatus.RUNNING.value)


class FiguresRepository:
    """Counts, times and durations over all runs and fires; read-only."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    def run_counts(self) -> dict[tuple[str, str], int]:
        """``{(pipeline, status): runs}``, one GROUP BY."""
        statement = select(RunRow.pipeline, RunRow.status, func.count()).group_by(
            RunRow.pipeline, RunRow.status
        )
        with self._sessions.read() as session:
            return {(p, s): n for p, s, n in session.execute(statement)}

    def fire_counts(self) -> dict[tuple[str, str], int]:
        """``{(schedule, outcome): fires}`` of settled fires: a ``claimed`` fire is on its way
        to another outcome, so counting it would make a count go down."""
        statement = (
            select(FireRow.schedule, FireRow.outcome, func.count())
            .where(FireRow.outcome != FireOutcome.CLAIMED.value)
            .group_by(FireRow.schedule, FireRow.outcome)
        )
        with self._sessions.read() as session:
            return {(s, o): n for s, o, n in session.execute(statement)}

    def last_success_times(self) -> dict[str, datetime]:
        """``{schedule: when its latest completed run finished}``."""
        statement = (
            select(RunRow.schedule, func.max(RunRow.finished_at))
            .where(RunRow.status == RunStatus.COMPLETED.value, RunRow.schedule.is_not(None))
            .group_by(RunRow.schedule)
        )
        with self._sessions.read() as session:
            return {s: t for s, t in session.execute(statement) if s is not None and t is not None}

    def pruned_counts(self) -> dict[tuple[str, str, str], int]:
        """``{(kind, name, outcome): rows}`` deleted by prunes: ``runs`` by pipeline and status,
        ``fires`` by schedule and outcome; added to the counters, which must never go down."""
        statement = select(
            PrunedCountRow.kind, PrunedCountRow.name, PrunedCountRow.outcome, PrunedCountRow.count
        )
        with self._sessions.read() as session:
            return {(k, n, o): int(c) for k, n, o, c in session.execute(statement)}

    def step_attempts_after(self, after_id: int) -> list[StepAttemptTimes]:
        """Every step attempt whose row id is above ``after_id``, oldest first."""
        statement = (
            select(
                StepRunRow.id,
                RunRow.pipeline,
                StepRunRow.status,
                StepRunRow.started_at,
                StepRunRow.finished_at,
            )
            .join(RunRow, RunRow.id == StepRunRow.run_id)
            .where(StepRunRow.id > after_id)
            .order_by(StepRunRow.id)
        )
        with self._sessions.read() as session:
            rows = session.execute(statement.execution_options(yield_per=_CHUNK))
            return [StepAttemptTimes(*row) for row in rows]
