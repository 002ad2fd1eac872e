"""Which runs a prune may delete, and their deletion, a few hundred runs per transaction.

A prune never deletes a live run (``queued`` or ``running``), the newest ``keep_last`` runs of
a pipeline, a run that registered a model (the registry names it), or a run whose outputs a
kept run reused (``reused_from``, followed to its end). The caller pages through the other
runs in id order (ids sort by creation time), decides about their files, and deletes each page
in one short transaction (``delete_runs``), so a prune of a million runs holds the store for a
few milliseconds at a time, never for the whole prune. ``delete_runs`` checks again inside its
transaction what may have changed since the page was read: a run that reused from one of the
page since the prune began keeps it.

A deleted run takes its step attempts, metrics and time fire records with it. A dropped
file's ledger row that the caller names in ``keep_fires`` (its file is still there) stays,
detached from the run, so the file is never run again; the others go.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from scheduler.core.ids import new_run_id
from scheduler.store.engine import sqlite_path
from scheduler.store.models import (
    FireRow,
    MetricRow,
    ModelRow,
    PrunedCountRow,
    RunRow,
    ScheduleRow,
    StepRunRow,
)
from scheduler.store.records import FireOutcome, RunStatus
from scheduler.store.sessions import NO_SYNC, Sessions, rowcount

LIVE_STATUSES = (RunStatus.QUEUED.value, RunStatus.RUNNING.value)
PAGE_RUNS = 500  # runs per page and per delete transaction
PRUNED_REASON = "run pruned"  # a ledger row whose run was deleted, kept for its file
_CHUNK = 500  # values per IN list: well under SQLite's bound-parameter limit


def id_bound(moment: datetime) -> str:
    """A run id below every id made at or after ``moment``, above every one made before."""
    return new_run_id(moment)[:9]


@dataclass(frozen=True)
class Protected:
    """What this prune keeps whatever its age, and from which run on reuse is watched."""

    run_ids: frozenset[str]
    # Runs with an id at or above this may still start reusing outputs (they were live, or
    # are new): ``delete_runs`` reads their references again in its transaction.
    watch_from: str


@dataclass(frozen=True)
class PrunableRun:
    id: str
    pipeline: str


@dataclass(frozen=True)
class LedgerRow:
    """A dropped file's ledger row of a run a prune is about to delete."""

    fire_id: int
    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class DeletedRuns:
    run_ids: list[str]  # the runs deleted (those of the page that were still deletable)
    step_rows: int
    metric_rows: int
    fire_rows: int  # fire and ledger rows deleted
    ledger_rows_kept: int  # ledger rows detached and kept for their files


class RetentionRepository:
    """Reads and deletes of a prune. Each method is one short transaction."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    def protected_runs(self, keep_last: int, older_than: str | None, now: datetime) -> Protected:
        """The runs a prune started ``now`` keeps, when it deletes the runs with ids below
        ``older_than`` (None: any run, oldest first, as the size limit does)."""
        with self._sessions.read() as session:
            keep: set[str] = set()
            if keep_last > 0:
                for pipeline in session.scalars(select(RunRow.pipeline).distinct()):
                    keep.update(
                        session.scalars(
                            select(RunRow.id)
                            .where(RunRow.pipeline == pipeline)
                            .order_by(RunRow.id.desc())
                            .limit(keep_last)
                        )
                    )
            live = set(session.scalars(select(RunRow.id).where(RunRow.status.in_(LIVE_STATUSES))))
            keep |= live
            keep.update(
                run_id
                for run_id in session.scalars(
                    select(ModelRow.run_id).where(ModelRow.run_id.is_not(None)).distinct()
                )
                if run_id is not None
            )
            references: dict[str, set[str]] = {}
            for run_id, origin in session.execute(
                select(StepRunRow.run_id, StepRunRow.reused_from)
                .where(StepRunRow.reused_from.is_not(None))
                .distinct()
            ):
                if origin is not None and origin != run_id:
                    references.setdefault(run_id, set()).add(origin)
            # Every run that is not a candidate by age is kept, and so are the runs it reused
            # from. Without an age limit only the size limit deletes, oldest first, and which
            # runs it keeps is not known yet: every run that reused keeps what it reused.
            kept_referrers = [
                r for r in references if r in keep or older_than is None or r >= older_than
            ]
        pending = [origin for r in kept_referrers for origin in references[r]]
        while pending:
            origin = pending.pop()
            if origin in keep:
                continue
            keep.add(origin)
            pending.extend(references.get(origin, ()))
        watch_from = min([id_bound(now), *live])
        return Protected(frozenset(keep), watch_from)

    def prunable_page(
        self,
        protected: Protected,
        *,
        after: str = "",
        before: str | None = None,
        limit: int = PAGE_RUNS,
    ) -> tuple[list[PrunableRun], str | None]:
        """Up to ``limit`` finished runs with ids in (``after``, ``before``), oldest first,
        minus the protected ones; and the cursor to pass as ``after`` next (None: no more)."""
        statement = (
            select(RunRow.id, RunRow.pipeline)
            .where(RunRow.id > after, RunRow.status.not_in(LIVE_STATUSES))
            .order_by(RunRow.id)
            .limit(limit)
        )
        if before is not None:
            statement = statement.where(RunRow.id < before)
        with self._sessions.read() as session:
            rows = session.execute(statement).all()
        runs = [PrunableRun(i, p) for i, p in rows if i not in protected.run_ids]
        return runs, (rows[-1][0] if len(rows) == limit else None)

    def ledger_rows(self, run_ids: Sequence[str]) -> list[LedgerRow]:
        """The dropped files' ledger rows of these runs."""
        found: list[LedgerRow] = []
        with self._sessions.read() as session:
            for chunk in _chunks(run_ids):
                rows = session.execute(
                    select(FireRow.id, FireRow.path, FireRow.size, FireRow.mtime_ns).where(
                        FireRow.run_id.in_(chunk), FireRow.path.is_not(None)
                    )
                )
                found.extend(LedgerRow(i, p or "", int(s or 0), int(m or 0)) for i, p, s, m in rows)
        return found

    def delete_runs(
        self, run_ids: Sequence[str], protected: Protected, keep_fires: Collection[int] = ()
    ) -> DeletedRuns:
        """Delete these runs (at most a page: one transaction) with their step attempts,
        metrics and fire records; the ledger rows in ``keep_fires`` stay, detached. A run that
        has turned live, registered a model, or been reused from since the page was read stays."""
        if not run_ids:
            return DeletedRuns([], 0, 0, 0, 0)
        with self._sessions.write() as session:
            ids = set(
                session.scalars(
                    select(RunRow.id).where(
                        RunRow.id.in_(run_ids), RunRow.status.not_in(LIVE_STATUSES)
                    )
                )
            )
            ids -= set(session.scalars(select(ModelRow.run_id).where(ModelRow.run_id.in_(ids))))
            ids -= set(
                session.scalars(
                    select(StepRunRow.reused_from).where(
                        StepRunRow.run_id >= protected.watch_from,
                        StepRunRow.reused_from.in_(ids),
                    )
                )
            )
            if not ids:
                return DeletedRuns([], 0, 0, 0, 0)
            keep = list(keep_fires)
            kept = 0
            for chunk in _chunks(keep):
                kept += rowcount(
                    session.execute(
                        update(FireRow)
                        .where(FireRow.id.in_(chunk), FireRow.run_id.in_(ids))
                        .values(run_id=None, reason=PRUNED_REASON),
                        execution_options=NO_SYNC,
                    )
                )
            _tally_deleted(session, ids)
            metrics = rowcount(session.execute(delete(MetricRow).where(MetricRow.run_id.in_(ids))))
            steps = rowcount(session.execute(delete(StepRunRow).where(StepRunRow.run_id.in_(ids))))
            fires = rowcount(session.execute(delete(FireRow).where(FireRow.run_id.in_(ids))))
            session.execute(
                update(ScheduleRow)
                .where(ScheduleRow.last_run_id.in_(ids))
                .values(last_run_id=None),
                execution_options=NO_SYNC,
            )
            session.execute(delete(RunRow).where(RunRow.id.in_(ids)))
        return DeletedRuns(sorted(ids), steps, metrics, fires, kept)

    def delete_old_fires(self, older_than: datetime, limit: int = PAGE_RUNS) -> int:
        """Delete up to ``limit`` fire records of time schedules that started no run (skipped,
        missed) and were made before ``older_than``; how many went."""
        settled = (FireOutcome.SKIPPED.value, FireOutcome.MISSED.value)
        with self._sessions.write() as session:
            ids = list(
                session.scalars(
                    select(FireRow.id)
                    .where(
                        FireRow.outcome.in_(settled),
                        FireRow.nominal_time.is_not(None),
                        FireRow.run_id.is_(None),
                        FireRow.created_at < older_than,
                    )
                    .limit(limit)
                )
            )
            if ids:
                _tally(session, "fires", _fire_counts(session, FireRow.id.in_(ids)))
                session.execute(delete(FireRow).where(FireRow.id.in_(ids)))
        return len(ids)

    def existing_runs(self, run_ids: Iterable[str]) -> set[str]:
        """Which of these run ids the store holds (folders of the others are leftovers)."""
        found: set[str] = set()
        with self._sessions.read() as session:
            for chunk in _chunks(list(run_ids)):
                found.update(session.scalars(select(RunRow.id).where(RunRow.id.in_(chunk))))
        return found

    def run_count(self) -> int:
        with self._sessions.read() as session:
            return int(session.scalar(select(func.count()).select_from(RunRow)) or 0)

    def database_bytes(self) -> int:
        """The database's size on disk: the SQLite file and its WAL, or PostgreSQL's
        ``pg_database_size``."""
        engine = self._sessions.engine
        path = sqlite_path(engine.url)
        if path is not None:
            total = 0
            for name in (path, path.with_name(path.name + "-wal")):
                with contextlib.suppress(OSError):  # no WAL just now
                    total += name.stat().st_size
            return total
        if engine.dialect.name != "postgresql":
            return 0
        with self._sessions.read() as session:
            return int(session.scalar(text("SELECT pg_database_size(current_database())")) or 0)


def _tally_deleted(session: Session, run_ids: Collection[str]) -> None:
    """Count the runs and fire records about to be deleted into ``pruned_counts``."""
    runs = session.execute(
        select(RunRow.pipeline, RunRow.status, func.count())
        .where(RunRow.id.in_(run_ids))
        .group_by(RunRow.pipeline, RunRow.status)
    )
    _tally(session, "runs", [(p, s, n) for p, s, n in runs])
    _tally(session, "fires", _fire_counts(session, FireRow.run_id.in_(run_ids)))


def _fire_counts(session: Session, which: ColumnElement[bool]) -> list[tuple[str, str, int]]:
    rows = session.execute(
        select(FireRow.schedule, FireRow.outcome, func.count())
        .where(which)
        .group_by(FireRow.schedule, FireRow.outcome)
    )
    return [(schedule, outcome, n) for schedule, outcome, n in rows]


def _tally(session: Session, kind: str, counts: Sequence[tuple[str, str, int]]) -> None:
    if not counts:
        return
    rows = [{"kind": kind, "name": n, "outcome": o, "count": c} for n, o, c in counts]
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(PrunedCountRow).values(rows)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["kind", "name", "outcome"],
            set_={"count": PrunedCountRow.count + statement.excluded["count"]},
        )
    )


def _chunks(values: Sequence[object]) -> Iterable[list[object]]:
    for start in range(0, len(values), _CHUNK):
        yield list(values[start : start + _CHUNK])
