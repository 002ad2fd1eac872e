"""Aggregate reads for ``/metrics``: the store is the truth, computed at each scrape."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scheduler.store.models import RunRow, StepRunRow


class FiguresStoreMixin:
    """Mixed into ``Store``."""

    if TYPE_CHECKING:  # provided by Store

        def _read(self) -> AbstractContextManager[Session]: ...

    def run_counts(self) -> dict[tuple[str, str], int]:
        """``{(pipeline, status): runs}``, one GROUP BY."""
        statement = select(RunRow.pipeline, RunRow.status, func.count()).group_by(
            RunRow.pipeline, RunRow.status
        )
        with self._read() as session:
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
        with self._read() as session:
            return [
                (pipeline, max(0.0, (finished - started).total_seconds()))
                for pipeline, started, finished in session.execute(statement)
            ]
