"""Aggregate reads for ``/metrics``: the store is the truth, computed at each scrape."""

from __future__ import annotations

from sqlalchemy import func, select

from scheduler.store.models import RunRow, StepRunRow
from scheduler.store.sessions import Sessions


class FiguresRepository:
    """Counts and durations over all runs; read-only."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    def run_counts(self) -> dict[tuple[str, str], int]:
        """``{(pipeline, status): runs}``, one GROUP BY."""
        statement = select(RunRow.pipeline, RunRow.status, func.count()).group_by(
            RunRow.pipeline, RunRow.status
        )
        with self._sessions.read() as session:
            return {(p, s): n for p, s, n in session.execute(statement)}

    def recent_step_durations(self, limit: int) -> list[tuple[str, float]]:
        """(pipeline, seconds) of the last ``limit`` step attempts that ran and finished."""
        statement = (
            select(RunRow.pipeline, StepRunRow.started_at, StepRunRow.finished_at)
            .join(RunRow, RunRow.id == StepRunRow.run_id)
            .where(StepRunRow.started_at.is_not(None), StepRunRow.finished_at.is_not(None))
            .order_by(StepRunRow.id.desc())
            .limit(limit)
        )
        with self._sessions.read() as session:
            return [
                (pipeline, max(0.0, (finished - started).total_seconds()))
                for pipeline, started, finished in session.execute(statement)
                if started is not None and finished is not None
            ]
