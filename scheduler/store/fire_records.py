"""Fire records of time schedules: one row per (schedule, nominal time), claimed before its run.

"Fired once" is the database's job: a fire record is inserted before its run is started, and
the unique constraint on (schedule, nominal time) turns a second claim — a crash and restart, a
reload, a second daemon — into a no-op instead of a second run. Each change of a fire also
updates its schedule's "last fire" (time, outcome, run) in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scheduler.core.clock import Clock
from scheduler.store.models import FireRow, ScheduleRow
from scheduler.store.outbox import NotifyRoutes, OutboxRepository, fires_missed
from scheduler.store.records import FIRE_OUTCOMES, FireOutcome, FireRecord
from scheduler.store.sessions import NO_SYNC, Sessions


class FireRepository:
    """Claims, outcomes and the history of time fires (``fires`` rows with a nominal time)."""

    def __init__(
        self, sessions: Sessions, clock: Clock, outbox: OutboxRepository | None = None
    ) -> None:
        self._sessions, self._clock = sessions, clock
        self._outbox = outbox  # its routes say who hears of missed fires

    def claim_fire(
        self,
        schedule: str,
        nominal_time: datetime,
        *,
        outcome: str = FireOutcome.CLAIMED.value,
        reason: str | None = None,
    ) -> bool:
        """Insert the fire record for (schedule, nominal time); False when it already exists."""
        value = checked_outcome(outcome)
        now = self._clock.now()
        try:
            with self._sessions.write() as session:
                session.add(
                    FireRow(
                        schedule=schedule,
                        nominal_time=nominal_time,
                        outcome=value,
                        reason=reason,
                        epoch=self._sessions.epoch,
                        created_at=now,
                        updated_at=now,
                    )
                )
                session.flush()
                _touch_schedule(session, schedule, nominal_time, value, None)
        except IntegrityError:
            return False
        return True

    def record_fires(
        self, schedule: str, nominal_times: Iterable[datetime], *, outcome: str, reason: str | None
    ) -> int:
        """Insert-or-ignore many fire records with one outcome (missed catch-up times); returns
        how many were new."""
        value = checked_outcome(outcome)
        times = list(nominal_times)
        if not times:
            return 0
        now = self._clock.now()
        with self._sessions.write() as session:
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
                    outcome=value,
                    reason=reason,
                    epoch=self._sessions.epoch,
                    created_at=now,
                    updated_at=now,
                )
                for t in new
            )
            if new:
                _touch_schedule(session, schedule, max(new), value, None)
                if value == FireOutcome.MISSED:
                    fires_missed(session, self._routes(), schedule, new, reason, now)
        return len(new)

    def _routes(self) -> NotifyRoutes | None:
        return self._outbox.routes if self._outbox is not None else None

    def update_fire(
        self,
        schedule: str,
        nominal_time: datetime,
        *,
        outcome: str,
        reason: str | None = None,
        run_id: str | None = None,
    ) -> None:
        value = checked_outcome(outcome)
        now = self._clock.now()
        with self._sessions.write() as session:
            newly_missed = value == FireOutcome.MISSED and session.scalar(
                select(FireRow.outcome).where(
                    FireRow.schedule == schedule, FireRow.nominal_time == nominal_time
                )
            ) not in (None, value)
            session.execute(
                update(FireRow)
                .where(FireRow.schedule == schedule, FireRow.nominal_time == nominal_time)
                .values(outcome=value, reason=reason, run_id=run_id, updated_at=now),
                execution_options=NO_SYNC,
            )
            _touch_schedule(session, schedule, nominal_time, value, run_id)
            if newly_missed:
                fires_missed(session, self._routes(), schedule, [nominal_time], reason, now)

    def fires_with_outcome(self, outcome: str) -> list[FireRecord]:
        """E.g. every ``claimed`` fire, to resume at start-up (claimed, then crashed)."""
        with self._sessions.read() as session:
            rows = session.scalars(
                select(FireRow).where(FireRow.outcome == outcome).order_by(FireRow.id)
            )
            return [fire_record(row) for row in rows]

    def list_fires(self, schedule: str | None = None, *, limit: int = 20) -> list[FireRecord]:
        """Newest first; ``limit`` 0 = all."""
        with self._sessions.read() as session:
            statement = select(FireRow).order_by(FireRow.id.desc())
            if schedule is not None:
                statement = statement.where(FireRow.schedule == schedule)
            if limit:
                statement = statement.limit(limit)
            return [fire_record(row) for row in session.scalars(statement)]

    def count_fires(self, schedule: str, outcome: str | None = None) -> int:
        with self._sessions.read() as session:
            statement = (
                select(func.count()).select_from(FireRow).where(FireRow.schedule == schedule)
            )
            if outcome is not None:
                statement = statement.where(FireRow.outcome == outcome)
            return int(session.scalar(statement) or 0)


def settle_fire(
    session: Session, schedule: str, nominal_time: datetime, run_id: str, now: datetime
) -> None:
    """Inside ``create_run``'s transaction: the fire started this run."""
    started = FireOutcome.STARTED.value
    session.execute(
        update(FireRow)
        .where(FireRow.schedule == schedule, FireRow.nominal_time == nominal_time)
        .values(outcome=started, reason=None, run_id=run_id, updated_at=now),
        execution_options=NO_SYNC,
    )
    _touch_schedule(session, schedule, nominal_time, started, run_id)


def checked_outcome(outcome: str) -> str:
    """The outcome as the plain string the column keeps; ValueError for an unknown one."""
    if outcome not in FIRE_OUTCOMES:
        raise ValueError(f"{outcome!r} is not a fire outcome ({', '.join(sorted(FIRE_OUTCOMES))})")
    return FireOutcome(outcome).value


def fire_record(row: FireRow) -> FireRecord:
    return FireRecord(
        schedule=row.schedule,
        nominal_time=row.nominal_time,
        path=row.path,
        outcome=FireOutcome(row.outcome),
        reason=row.reason,
        run_id=row.run_id,
        created_at=row.created_at,
    )


def _touch_schedule(
    session: Session, schedule: str, nominal_time: datetime, outcome: str, run_id: str | None
) -> None:
    row = session.get(ScheduleRow, schedule)
    if row is None:
        return
    if row.last_fire_time is None or nominal_time >= row.last_fire_time:
        row.last_fire_time = nominal_time
        row.last_outcome = outcome
        if run_id is not None or outcome != FireOutcome.STARTED:
            row.last_run_id = run_id if run_id is not None else row.last_run_id
