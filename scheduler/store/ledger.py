"""The file-drop ledger: one ``fires`` row per (schedule, path, size, mtime_ns).

A dropped file is claimed (insert-or-ignore on that unique key) before its run is requested,
and ``create_run`` settles the claim (``started``, run id) in the run's own transaction, so a
crash leaves either a ``claimed`` row (the run is requested again at start-up) or a run and a
settled row — never a file handled twice or lost. A changed file (new size or mtime) is a new
key, so it counts again. Paths are relative to the datastore root, as
escaped text (``scheduler.core.pathnames``): valid UTF-8 with no control character, so every
backend's text column takes any file name, and the name's bytes come back exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from scheduler.core.clock import Clock
from scheduler.store.fire_records import checked_outcome
from scheduler.store.models import FireRow, ScheduleRow
from scheduler.store.records import FileFire, FileKey, FireOutcome
from scheduler.store.sessions import NO_SYNC, Sessions

__all__ = ["FileFire", "FileKey", "LedgerRepository", "settle_file_fires"]

_CHUNK = 400  # rows per statement: well under SQLite's bound-parameter limit


class LedgerRepository:
    """Claims and outcomes of dropped files (``fires`` rows with a path)."""

    def __init__(self, sessions: Sessions, clock: Clock) -> None:
        self._sessions, self._clock = sessions, clock

    def claim_files(self, schedule: str, files: Iterable[FileKey]) -> list[FileKey]:
        """Insert-or-ignore a ``claimed`` row per file; return the files that were new."""
        keys = list(dict.fromkeys(files))
        if not keys:
            return []
        now = self._clock.now()
        new: list[FileKey] = []
        with self._sessions.write() as session:
            postgres = session.get_bind().dialect.name == "postgresql"
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                known = _existing(session, schedule, chunk)
                fresh = [k for k in chunk if k not in known]
                if not fresh:
                    continue
                rows = [
                    {
                        "schedule": schedule,
                        "path": key.path,
                        "size": key.size,
                        "mtime_ns": key.mtime_ns,
                        "outcome": FireOutcome.CLAIMED.value,
                        "epoch": self._sessions.epoch,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for key in fresh
                ]
                # Another daemon racing us on the same key: its claim wins, ours is ignored.
                unique = ["schedule", "path", "size", "mtime_ns"]
                if postgres:
                    pg = (
                        pg_insert(FireRow)
                        .values(rows)
                        .on_conflict_do_nothing(index_elements=unique)
                    )
                    session.execute(pg)
                else:
                    lite = sqlite_insert(FireRow).values(rows)
                    session.execute(lite.on_conflict_do_nothing(index_elements=unique))
                new.extend(fresh)
        return new

    def known_files(self, schedule: str, files: Sequence[FileKey]) -> set[FileKey]:
        """Which of ``files`` the ledger already holds (any outcome)."""
        found: set[FileKey] = set()
        with self._sessions.read() as session:
            for start in range(0, len(files), _CHUNK):
                found |= _existing(session, schedule, files[start : start + _CHUNK])
        return found

    def claimed_files(self, schedule: str) -> list[FileKey]:
        """Files claimed but not yet given a run (a crash between claim and run), oldest first."""
        with self._sessions.read() as session:
            rows = session.execute(
                select(FireRow.path, FireRow.size, FireRow.mtime_ns)
                .where(
                    FireRow.schedule == schedule,
                    FireRow.outcome == FireOutcome.CLAIMED.value,
                    FireRow.path.is_not(None),
                )
                .order_by(FireRow.id)
            )
            return [FileKey(p or "", int(s or 0), int(m or 0)) for p, s, m in rows]

    def mark_files(
        self, schedule: str, files: Sequence[FileKey], *, outcome: str, reason: str | None = None
    ) -> None:
        """Settle claims that started no run (e.g. ``skipped`` with the refusal's reason)."""
        value = checked_outcome(outcome)
        now = self._clock.now()
        with self._sessions.write() as session:
            for start in range(0, len(files), _CHUNK):
                session.execute(
                    update(FireRow)
                    .where(
                        FireRow.schedule == schedule, _keys_clause(files[start : start + _CHUNK])
                    )
                    .values(outcome=value, reason=reason, updated_at=now),
                    execution_options=NO_SYNC,
                )

    def last_file(self, schedule: str) -> str | None:
        """The path of the file most recently given a run."""
        with self._sessions.read() as session:
            return session.scalar(
                select(FireRow.path)
                .where(
                    FireRow.schedule == schedule,
                    FireRow.path.is_not(None),
                    FireRow.outcome == FireOutcome.STARTED.value,
                )
                .order_by(FireRow.updated_at.desc(), FireRow.id.desc())
                .limit(1)
            )

    def list_file_fires(self, schedule: str, *, limit: int = 0) -> list[FileFire]:
        """The schedule's ledger, oldest first; ``limit`` 0 = all."""
        with self._sessions.read() as session:
            statement = (
                select(FireRow)
                .where(FireRow.schedule == schedule, FireRow.path.is_not(None))
                .order_by(FireRow.id)
            )
            if limit:
                statement = statement.limit(limit)
            return [
                FileFire(
                    path=row.path or "",
                    size=int(row.size or 0),
                    mtime_ns=int(row.mtime_ns or 0),
                    outcome=FireOutcome(row.outcome),
                    reason=row.reason,
                    run_id=row.run_id,
                    created_at=row.created_at,
                )
                for row in session.scalars(statement)
            ]

    def count_file_fires(self, schedule: str, *, outcome: str | None = None) -> int:
        """The schedule's ledger rows; only those with ``outcome`` when given (``skipped``:
        the files that could not be handled, each with its reason)."""
        statement = (
            select(func.count())
            .select_from(FireRow)
            .where(FireRow.schedule == schedule, FireRow.path.is_not(None))
        )
        if outcome is not None:
            statement = statement.where(FireRow.outcome == checked_outcome(outcome))
        with self._sessions.read() as session:
            return int(session.scalar(statement) or 0)


def settle_file_fires(
    session: Session, schedule: str, files: Sequence[FileKey], run_id: str, now: datetime
) -> None:
    """Inside ``create_run``'s transaction: these files' claims started this run."""
    started = FireOutcome.STARTED.value
    for start in range(0, len(files), _CHUNK):
        session.execute(
            update(FireRow)
            .where(FireRow.schedule == schedule, _keys_clause(files[start : start + _CHUNK]))
            .values(outcome=started, reason=None, run_id=run_id, updated_at=now),
            execution_options=NO_SYNC,
        )
    row = session.get(ScheduleRow, schedule)
    if row is not None:
        row.last_outcome = started
        row.last_run_id = run_id


def _existing(session: Session, schedule: str, chunk: Sequence[FileKey]) -> set[FileKey]:
    rows = session.execute(
        select(FireRow.path, FireRow.size, FireRow.mtime_ns).where(
            FireRow.schedule == schedule, FireRow.path.in_({key.path for key in chunk})
        )
    )
    return {FileKey(p or "", int(s or 0), int(m or 0)) for p, s, m in rows}


def _keys_clause(chunk: Sequence[FileKey]) -> ColumnElement[bool]:
    """(path, size, mtime_ns) IN (...) as an OR of ANDs: portable to every SQLite build. The
    leading ``path IN`` lets the planner use the (schedule, path, ...) unique index; without it
    SQLite scanned the schedule's whole ledger for every chunk, so settling slowed as it grew."""
    return and_(
        FireRow.path.in_({key.path for key in chunk}),
        or_(
            *(
                and_(
                    FireRow.path == key.path,
                    FireRow.size == key.size,
                    FireRow.mtime_ns == key.mtime_ns,
                )
                for key in chunk
            )
        ),
    )
