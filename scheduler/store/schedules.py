"""The store's schedule side: registration, overrides, and fire records.

"Fired once" is the database's job (STYLE, "Exactly once"): a fire record is inserted before its
run is started, and the unique constraint on (schedule, nominal time) turns a second claim — a
crash and restart, a reload, a second daemon — into a no-op instead of a second run.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scheduler.store import queries
from scheduler.store.models import FireRow, RunRow, ScheduleRow
from scheduler.store.records import FireRecord, RunRecord, ScheduleState

FIRE_OUTCOMES = frozenset({"claimed", "started", "queued", "skipped", "missed"})
_NO_SYNC = {"synchronize_session": False}


class ScheduleStoreMixin:
    """Mixed into ``Store``; uses its ``_read``/``_write`` sessions and clock."""

    _clock: Any

    if TYPE_CHECKING:  # provided by Store

        def _read(self) -> AbstractContextManager[Session]: ...
        def _write(self) -> AbstractContextManager[Session]: ...

    # -- schedules ---------------------------------------------------------------------------

    def register_schedules(self, sources: dict[str, str]) -> dict[str, ScheduleState]:
        """Record the first registration of each named schedule (name -> source); return all."""
        now = self._clock.now()
        with self._write() as session:
            known = set(session.scalars(select(ScheduleRow.name)))
            for name, source in sources.items():
                if name not in known:
                    session.add(ScheduleRow(name=name, source=source, registered_at=now))
        return self.schedule_states()

    def schedule_states(self) -> dict[str, ScheduleState]:
        with self._read() as session:
            return {row.name: _state(row) for row in session.scalars(select(ScheduleRow))}

    def set_override(self, name: str, enabled: bool | None, *, source: str = "file") -> None:
        """Enable/disable a schedule until the opposite command (None clears the override)."""
        with self._write() as session:
            row = session.get(ScheduleRow, name)
            if row is None:
                row = ScheduleRow(name=name, source=source, registered_at=self._clock.now())
                session.add(row)
            row.override = enabled

    # -- fires -------------------------------------------------------------------------------

    def claim_fire(
        self,
        schedule: str,
        nominal_time: datetime,
        *,
        outcome: str = "claimed",
        reason: str | None = None,
    ) -> bool:
        """Insert the fire record for (schedule, nominal time); False when it already exists."""
        _check_outcome(outcome)
        now = self._clock.now()
        try:
            with self._write() as session:
                session.add(
                    FireRow(
                        schedule=schedule,
                        nominal_time=nominal_time,
                        outcome=outcome,
                        reason=reason,
                        created_at=now,
                        updated_at=now,
                    )
                )
                session.flush()
                _touch_schedule(session, schedule, nominal_time, outcome, None)
        except IntegrityError:
            return False
        return True

    def record_fires(
        self, schedule: str, nominal_times: Iterable[datetime], *, outcome: str, reason: str | None
    ) -> int:
        """Insert-or-ignore many fire records with one outcome (missed catch-up times); returns
        how many were new."""
        _check_outcome(outcome)
        times = list(nominal_times)
        if not times:
            return 0
        now = self._clock.now()
        with self._write() as session:
            existing = set(
                session.scalars(
                    select(FireRow.nominal_time).where(
                        FireRow.schedule == schedule, FireRow.nominal_time.in_(times)
                    )
                )
            )
            new = [t for t in times if t not in existing]
            session.add_all(
                FireRow(
                    schedule=schedule,
                    nominal_time=t,
                    outcome=outcome,
                    reason=reason,
                    created_at=now,
                    updated_at=now,
                )
                for t in new
            )
            if new:
                _touch_schedule(session, schedule, max(new), outcome, None)
        return len(new)

    def update_fire(
        self,
        schedule: str,
        nominal_time: datetime,
        *,
        outcome: str,
        reason: str | None = None,
        run_id: str | None = None,
    ) -> None:
        _check_outcome(outcome)
        with self._write() as session:
            session.execute(
                update(FireRow)
                .where(FireRow.schedule == schedule, FireRow.nominal_time == nominal_time)
                .values(
                    outcome=outcome, reason=reason, run_id=run_id, updated_at=self._clock.now()
                ),
                execution_options=_NO_SYNC,
            )
            _touch_schedule(session, schedule, nominal_time, outcome, run_id)

    def fires_with_outcome(self, outcome: str) -> list[FireRecord]:
        """E.g. every ``claimed`` fire, to resume at start-up (claimed, then crashed)."""
        with self._read() as session:
            rows = session.scalars(
                select(FireRow).where(FireRow.outcome == outcome).order_by(FireRow.id)
            )
            return [_fire(row) for row in rows]

    def list_fires(self, schedule: str | None = None, *, limit: int = 20) -> list[FireRecord]:
        """Newest first; ``limit`` 0 = all."""
        with self._read() as session:
            statement = select(FireRow).order_by(FireRow.id.desc())
            if schedule is not None:
                statement = statement.where(FireRow.schedule == schedule)
            if limit:
                statement = statement.limit(limit)
            return [_fire(row) for row in session.scalars(statement)]

    def count_fires(self, schedule: str, outcome: str | None = None) -> int:
        with self._read() as session:
            statement = (
                select(func.count()).select_from(FireRow).where(FireRow.schedule == schedule)
            )
            if outcome is not None:
                statement = statement.where(FireRow.outcome == outcome)
            return int(session.scalar(statement) or 0)

    # -- runs the daemon must look after ---------------------------------------------------

    def open_runs(self) -> list[RunRecord]:
        """Runs not finished (queued or running), oldest first."""
        with self._read() as session:
            rows = session.scalars(
                select(RunRow).where(RunRow.status.in_(("queued", "running"))).order_by(RunRow.id)
            )
            return [queries.run_record(row) for row in rows]

    def mark_recovered(self, run_id: str) -> None:
        """A queued run taken over by a new daemon after its owner died: same id, recovered."""
        with self._write() as session:
            session.execute(
                update(RunRow).where(RunRow.id == run_id).values(recovered=True),
                execution_options=_NO_SYNC,
            )


def settle_fire(
    session: Session, schedule: str, nominal_time: datetime, run_id: str, now: datetime
) -> None:
    """Inside ``create_run``'s transaction: the fire started this run."""
    session.execute(
        update(FireRow)
        .where(FireRow.schedule == schedule, FireRow.nominal_time == nominal_time)
        .values(outcome="started", reason=None, run_id=run_id, updated_at=now),
        execution_options=_NO_SYNC,
    )
    _touch_schedule(session, schedule, nominal_time, "started", run_id)


def _touch_schedule(
    session: Session, schedule: str, nominal_time: datetime, outcome: str, run_id: str | None
) -> None:
    row = session.get(ScheduleRow, schedule)
    if row is None:
        return
    if row.last_fire_time is None or nominal_time >= row.last_fire_time:
        row.last_fire_time = nominal_time
        row.last_outcome = outcome
        if run_id is not None or outcome != "started":
            row.last_run_id = run_id if run_id is not None else row.last_run_id


def _check_outcome(outcome: str) -> None:
    if outcome not in FIRE_OUTCOMES:
        raise ValueError(f"{outcome!r} is not a fire outcome ({', '.join(sorted(FIRE_OUTCOMES))})")


def _state(row: ScheduleRow) -> ScheduleState:
    return ScheduleState(
        name=row.name,
        source=row.source,
        registered_at=row.registered_at,
        override=row.override,
        last_fire_time=row.last_fire_time,
        last_outcome=row.last_outcome,
        last_run_id=row.last_run_id,
        definition=row.definition,
    )


def _fire(row: FireRow) -> FireRecord:
    return FireRecord(
        schedule=row.schedule,
        nominal_time=row.nominal_time,
        path=row.path,
        outcome=row.outcome,
        reason=row.reason,
        run_id=row.run_id,
        created_at=row.created_at,
    )
