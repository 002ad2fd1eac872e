"""Backfills: a schedule's nominal times over a range, each run once, in order, resumable.

A backfill is one ``backfills`` row and one ``backfill_times`` row per nominal time. A time's
run id is written before its run is recorded, so a process that dies in between is followed by
one that finds the run it made (or makes it, with that id): never a second run of a time. The
times themselves are claimed through the schedule's fire records (``fire_records``), which a
live fire claims too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scheduler.core.clock import Clock, iso
from scheduler.core.errors import AmbiguousId, NotFound
from scheduler.core.ids import is_id_prefix, normalize_id, prefix_bounds
from scheduler.core.procinfo import Owner
from scheduler.store.models import BackfillRow, BackfillTimeRow, FireRow, RunRow
from scheduler.store.sessions import NO_SYNC, Sessions

BACKFILL_STATUSES = ("running", "completed", "canceled", "failed")
TIME_OUTCOMES = ("pending", "started", "skipped", "completed", "failed", "canceled")
#: Outcomes after which nothing more happens to a time.
SETTLED_OUTCOMES = ("skipped", "completed", "failed", "canceled")


@dataclass(frozen=True)
class BackfillTime:
    """One nominal time of a backfill and what became of it."""

    nominal_time: datetime
    outcome: str
    reason: str | None
    run_id: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "nominal_time": iso(self.nominal_time),
            "outcome": self.outcome,
            "reason": self.reason,
            "run_id": self.run_id,
        }


@dataclass(frozen=True)
class Backfill:
    """A backfill and its progress: ``done`` of ``total`` times settled; ``counts`` by outcome."""

    id: str
    schedule: str
    range_from: datetime
    range_to: datetime
    max_concurrent: int
    rerun: bool
    status: str
    reason: str | None
    requested_by: str | None
    owner: Owner | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def done(self) -> int:
        return sum(self.counts.get(outcome, 0) for outcome in SETTLED_OUTCOMES)

    @property
    def finished(self) -> bool:
        return self.status != "running"

    def to_json(self) -> dict[str, Any]:
        """The ``backfills --json`` object (and the REST API's)."""
        return {
            "id": self.id,
            "schedule": self.schedule,
            "from": iso(self.range_from),
            "to": iso(self.range_to),
            "max_concurrent": self.max_concurrent,
            "rerun": self.rerun,
            "status": self.status,
            "reason": self.reason,
            "requested_by": self.requested_by,
            "total": self.total,
            "done": self.done,
            "counts": {outcome: self.counts.get(outcome, 0) for outcome in TIME_OUTCOMES},
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "finished_at": iso(self.finished_at),
        }


@dataclass(frozen=True)
class FireHolder:
    """Who already holds a (schedule, nominal time) fire record: its outcome, run and the run's
    trigger (``backfill:<id>`` for a backfill's, ``schedule:<name>`` for a live fire's)."""

    outcome: str
    reason: str | None
    run_id: str | None
    trigger: str | None


class BackfillRepository:
    """Backfills, their times, and the fire records a plan reads."""

    def __init__(self, sessions: Sessions, clock: Clock) -> None:
        self._sessions, self._clock = sessions, clock

    def create_backfill(
        self,
        backfill_id: str,
        schedule: str,
        range_from: datetime,
        range_to: datetime,
        times: Sequence[datetime],
        *,
        max_concurrent: int,
        rerun: bool,
        requested_by: str | None,
        owner: Owner | None,
    ) -> Backfill:
        """Record a ``running`` backfill with every time ``pending``, in one transaction."""
        now = self._clock.now()
        with self._sessions.write() as session:
            session.add(
                BackfillRow(
                    id=backfill_id,
                    schedule=schedule,
                    range_from=range_from,
                    range_to=range_to,
                    max_concurrent=max_concurrent,
                    rerun=rerun,
                    status="running",
                    requested_by=requested_by,
                    owner_host=owner.host if owner else None,
                    owner_pid=owner.pid if owner else None,
                    owner_start_ticks=owner.start_ticks if owner else None,
                    created_at=now,
                    updated_at=now,
                )
            )
            session.flush()
            session.add_all(
                BackfillTimeRow(
                    backfill_id=backfill_id, nominal_time=t, outcome="pending", updated_at=now
                )
                for t in times
            )
            session.flush()
            return _backfill(session, _row(session, backfill_id))

    def resolve_backfill_id(self, reference: str) -> str:
        """The id of the one backfill whose id starts with ``reference``; NotFound, AmbiguousId."""
        prefix = normalize_id(reference)
        if not is_id_prefix(prefix):
            raise NotFound(f"no backfill {reference!r}")
        low, high = prefix_bounds(prefix)
        with self._sessions.read() as session:
            ids = list(
                session.scalars(
                    select(BackfillRow.id).where(BackfillRow.id.between(low, high)).limit(2)
                )
            )
        if not ids:
            raise NotFound(f"no backfill {reference!r}")
        if len(ids) > 1:
            raise AmbiguousId(f"more than one backfill starts with {reference!r}")
        return ids[0]

    def get_backfill(self, backfill_id: str) -> Backfill:
        with self._sessions.read() as session:
            return _backfill(session, _row(session, backfill_id))

    def list_backfills(self, *, statuses: Sequence[str] = (), limit: int = 20) -> list[Backfill]:
        """Newest first; ``limit`` 0 = all."""
        with self._sessions.read() as session:
            statement = select(BackfillRow).order_by(BackfillRow.id.desc())
            if statuses:
                statement = statement.where(BackfillRow.status.in_(statuses))
            if limit:
                statement = statement.limit(limit)
            rows = list(session.scalars(statement))
            counts = _counts(session, [row.id for row in rows])
            return [_record(row, counts.get(row.id, {})) for row in rows]

    def backfill_times(self, backfill_id: str) -> list[BackfillTime]:
        """Its times, oldest first."""
        with self._sessions.read() as session:
            rows = session.scalars(
                select(BackfillTimeRow)
                .where(BackfillTimeRow.backfill_id == backfill_id)
                .order_by(BackfillTimeRow.nominal_time)
            )
            return [
                BackfillTime(row.nominal_time, row.outcome, row.reason, row.run_id) for row in rows
            ]

    def set_backfill_time(
        self,
        backfill_id: str,
        nominal_time: datetime,
        *,
        outcome: str,
        reason: str | None = None,
        run_id: str | None = None,
    ) -> None:
        """Record what became of one time (``run_id`` None keeps the one recorded)."""
        if outcome not in TIME_OUTCOMES:
            raise ValueError(f"{outcome!r} is not a backfill time outcome")
        now = self._clock.now()
        values: dict[str, Any] = {"outcome": outcome, "reason": reason, "updated_at": now}
        if run_id is not None:
            values["run_id"] = run_id
        with self._sessions.write() as session:
            session.execute(
                update(BackfillTimeRow)
                .where(
                    BackfillTimeRow.backfill_id == backfill_id,
                    BackfillTimeRow.nominal_time == nominal_time,
                )
                .values(**values),
                execution_options=NO_SYNC,
            )
            session.execute(
                update(BackfillRow).where(BackfillRow.id == backfill_id).values(updated_at=now),
                execution_options=NO_SYNC,
            )

    def finish_backfill(self, backfill_id: str, status: str, reason: str | None = None) -> Backfill:
        """End a running backfill ``status``; one already ended keeps its end. Times still
        pending are settled ``canceled`` (nothing will run them)."""
        if status not in BACKFILL_STATUSES or status == "running":
            raise ValueError(f"{status!r} is not the end of a backfill")
        now = self._clock.now()
        with self._sessions.write() as session:
            row = _row(session, backfill_id)
            if row.status == "running":
                row.status, row.reason = status, reason
                row.updated_at = row.finished_at = now
                session.execute(
                    update(BackfillTimeRow)
                    .where(
                        BackfillTimeRow.backfill_id == backfill_id,
                        BackfillTimeRow.outcome == "pending",
                        BackfillTimeRow.run_id.is_(None),
                    )
                    .values(outcome="canceled", reason=reason or status, updated_at=now),
                    execution_options=NO_SYNC,
                )
            session.flush()
            return _backfill(session, row)

    def take_backfill(self, backfill_id: str, owner: Owner) -> None:
        """``owner`` runs this backfill from now on (a daemon resuming it)."""
        with self._sessions.write() as session:
            session.execute(
                update(BackfillRow)
                .where(BackfillRow.id == backfill_id)
                .values(
                    owner_host=owner.host,
                    owner_pid=owner.pid,
                    owner_start_ticks=owner.start_ticks,
                    updated_at=self._clock.now(),
                ),
                execution_options=NO_SYNC,
            )

    def fire_holders(
        self, schedule: str, nominal_times: Iterable[datetime]
    ) -> dict[datetime, FireHolder]:
        """The fire records already held for these times of ``schedule``, by nominal time."""
        times = list(nominal_times)
        found: dict[datetime, FireHolder] = {}
        with self._sessions.read() as session:
            for start in range(0, len(times), 500):
                chunk = times[start : start + 500]
                statement = (
                    select(
                        FireRow.nominal_time,
                        FireRow.outcome,
                        FireRow.reason,
                        FireRow.run_id,
                        RunRow.trigger,
                    )
                    .outerjoin(RunRow, RunRow.id == FireRow.run_id)
                    .where(FireRow.schedule == schedule, FireRow.nominal_time.in_(chunk))
                )
                for nominal, outcome, reason, run_id, trigger in session.execute(statement):
                    if nominal is not None:
                        found[nominal] = FireHolder(outcome, reason, run_id, trigger)
        return found

    def claim_backfill_fire(self, schedule: str, nominal_time: datetime, trigger: str) -> bool:
        """Insert the fire record of (schedule, nominal time) for a backfill (``queued``, its
        reason the backfill's trigger); False when the time already has one. Unlike a live
        fire's claim it leaves the schedule's last fire alone: that is where the daemon's
        catch-up starts, and a backfill of older times must not move it."""
        now = self._clock.now()
        try:
            with self._sessions.write() as session:
                session.add(
                    FireRow(
                        schedule=schedule,
                        nominal_time=nominal_time,
                        outcome="queued",
                        reason=trigger,
                        epoch=self._sessions.epoch,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            return False
        return True

    def settle_backfill_fire(
        self, schedule: str, nominal_time: datetime, trigger: str, run_id: str
    ) -> None:
        """The backfill's fire record of this time started run ``run_id`` (a fire record
        another claimed is left alone)."""
        with self._sessions.write() as session:
            session.execute(
                update(FireRow)
                .where(
                    FireRow.schedule == schedule,
                    FireRow.nominal_time == nominal_time,
                    FireRow.reason == trigger,
                    FireRow.run_id.is_(None),
                )
                .values(outcome="started", run_id=run_id, updated_at=self._clock.now()),
                execution_options=NO_SYNC,
            )

    def recorded_run_status(self, run_id: str) -> str | None:
        """The status of run ``run_id``, or None when no such run was recorded."""
        with self._sessions.read() as session:
            return session.scalar(select(RunRow.status).where(RunRow.id == run_id))


def _row(session: Session, backfill_id: str) -> BackfillRow:
    row = session.get(BackfillRow, backfill_id)
    if row is None:
        raise NotFound(f"no backfill {backfill_id!r}")
    return row


def _counts(session: Session, ids: Sequence[str]) -> dict[str, dict[str, int]]:
    if not ids:
        return {}
    counts: dict[str, dict[str, int]] = {}
    statement = (
        select(BackfillTimeRow.backfill_id, BackfillTimeRow.outcome, func.count())
        .where(BackfillTimeRow.backfill_id.in_(ids))
        .group_by(BackfillTimeRow.backfill_id, BackfillTimeRow.outcome)
    )
    for backfill_id, outcome, count in session.execute(statement):
        counts.setdefault(backfill_id, {})[outcome] = int(count)
    return counts


def _backfill(session: Session, row: BackfillRow) -> Backfill:
    return _record(row, _counts(session, [row.id]).get(row.id, {}))


def _record(row: BackfillRow, counts: dict[str, int]) -> Backfill:
    owner = (
        Owner(row.owner_host, row.owner_pid, row.owner_start_ticks or 0)
        if row.owner_host is not None and row.owner_pid is not None
        else None
    )
    return Backfill(
        id=row.id,
        schedule=row.schedule,
        range_from=row.range_from,
        range_to=row.range_to,
        max_concurrent=row.max_concurrent,
        rerun=row.rerun,
        status=row.status,
        reason=row.reason,
        requested_by=row.requested_by,
        owner=owner,
        created_at=row.created_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
        counts=dict(counts),
    )


__all__ = [
    "BACKFILL_STATUSES",
    "SETTLED_OUTCOMES",
    "TIME_OUTCOMES",
    "Backfill",
    "BackfillRepository",
    "BackfillTime",
    "FireHolder",
]
