"""The reads of a command line, on a SQLite store, with the standard library's ``sqlite3``.

``pipesched runs``, ``show``, ``logs``, ``fires``, ``models`` and ``metrics`` start a new process
each time: SQLAlchemy's ORM would cost them more than the read itself. These queries are the
ones of the repositories (``queries``, ``fire_records``, ``schedules``, ``model_registry``), and
hand out the same records, so every front end prints the same thing whichever way it read.
A database that is missing or not at the current schema is left to ``Store.open``, which
creates or migrates it.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scheduler.core.errors import AmbiguousId, NotFound
from scheduler.core.ids import is_id_prefix, normalize_id, prefix_bounds
from scheduler.core.runtimes import RunTimes
from scheduler.store.records import (
    FileKey,
    FireOutcome,
    FireRecord,
    Metric,
    ModelRecord,
    Owner,
    RunDetail,
    RunRecord,
    RunStatus,
    ScheduleState,
    StepAttempt,
    StepStatus,
)

# The schema these queries read: ``migrate.HEAD_REVISION`` (a test holds them equal).
SCHEMA_REVISION = "0014"
AMBIGUOUS_CANDIDATES = 5
BUSY_TIMEOUT_SECONDS = 5.0
# SQLite allows 32766 parameters in one statement (999 before 3.32): ask in batches.
IDS_PER_QUERY = 500

_RUN_COLUMNS = (
    "id, pipeline, version, content_hash, experiment, status, status_reason, recovered, trigger, "
    "schedule, parameters, owner_host, owner_pid, owner_start_ticks, created_at, started_at, "
    "finished_at, nominal_time, interval_start, interval_end, nominal_zone"
)
_STEP_COLUMNS = (
    "run_id, step, attempt, display_name, type, status, status_reason, exit_code, started_at, "
    "finished_at, pid, pgid, proc_start_ticks, log_path, workdir, fingerprint, reused_from, "
    "outputs"
)
_METRIC_COLUMNS = "run_id, step, attempt, name, kind, value, logged_at"
_MODEL_COLUMNS = "name, version, path, tags, properties, description, run_id, step, created_at"


@dataclass(frozen=True)
class PublishedEntry:
    """A published version as ``Store.list_published`` gives it (its ``PublishedRecord``)."""

    pipeline: str
    version: str
    description: str | None
    content_hash: str
    snapshot_dir: str
    published_at: datetime
    is_default: bool


def sqlite_file(url: str) -> Path | None:
    """The database file of a ``sqlite:///PATH`` URL (without query options), else None."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or "?" in url or "%" in url:
        return None  # options or escapes: SQLAlchemy's own reading of the URL decides
    path = url[len(prefix) :]
    if path in ("", ":memory:"):
        return None
    return Path(path)


class SqliteReads:
    """Read-only queries on one SQLite database file, with the methods and records of the
    store's own reads."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    @classmethod
    def open(cls, url: str) -> SqliteReads | None:
        """The reads of the database at ``url`` when it is a SQLite file at the current schema;
        None for anything else (``Store.open`` then creates, migrates or refuses it)."""
        path = sqlite_file(url)
        if path is None or not os.path.isfile(path):
            return None
        try:
            connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        except sqlite3.Error:
            return None
        try:
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.Error:
            row = None
        if row is None or row[0] != SCHEMA_REVISION:
            connection.close()
            return None
        return cls(connection)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SqliteReads:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- runs --------------------------------------------------------------------------------

    def resolve_run_id(self, prefix: str) -> str:
        """Git's rule: any prefix that matches exactly one run."""
        wanted = normalize_id(prefix)
        if not is_id_prefix(wanted):
            raise NotFound(f"no run matches {prefix!r}", hint="run ids use 0-9 and a-z")
        low, high = prefix_bounds(wanted)
        ids = [
            row[0]
            for row in self._db.execute(
                "SELECT id FROM runs WHERE id BETWEEN ? AND ? ORDER BY id DESC LIMIT ?",
                (low, high, AMBIGUOUS_CANDIDATES + 1),
            )
        ]
        if not ids:
            raise NotFound(f"no run matches {prefix!r}", hint="pipesched runs lists recent runs")
        if len(ids) > 1:
            shown = ", ".join(ids[:AMBIGUOUS_CANDIDATES])
            more = ", ..." if len(ids) > AMBIGUOUS_CANDIDATES else ""
            raise AmbiguousId(
                f"more than one run matches {prefix!r}", hint=f"candidates: {shown}{more}"
            )
        return str(ids[0])

    def get_run(self, run_id: str) -> RunRecord:
        row = self._db.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        found = row.fetchone()
        if found is None:
            raise NotFound(f"no run {run_id!r}")
        return _run(found)

    def get_run_detail(self, run_id: str) -> RunDetail:
        """The run, its attempts (first start first, pending ones last in declaration order)
        and its metrics, read in one transaction."""
        self._db.execute("BEGIN")
        try:
            run = self.get_run(run_id)
            attempts = self._db.execute(
                f"SELECT {_STEP_COLUMNS} FROM step_runs WHERE run_id = ? "
                "ORDER BY started_at IS NULL, started_at, id",
                (run_id,),
            )
            steps = [_attempt(row) for row in attempts]
            metrics = self._db.execute(
                f"SELECT {_METRIC_COLUMNS} FROM metrics WHERE run_id = ? ORDER BY logged_at, id",
                (run_id,),
            )
            return RunDetail(run=run, attempts=steps, metrics=[_metric(row) for row in metrics])
        finally:
            self._db.execute("COMMIT")

    def list_runs(
        self,
        *,
        pipeline: str | None = None,
        statuses: Sequence[str] = (),
        limit: int = 20,
        before: str | None = None,
        experiment: str | None = None,
        schedule: str | None = None,
        trigger: str | None = None,
    ) -> list[RunRecord]:
        """Newest first; ``limit`` 0 means all; ``before`` a run id, for paging."""
        where: list[str] = []
        values: list[Any] = []
        if pipeline is not None:
            where.append("pipeline = ?")
            values.append(pipeline)
        if statuses:
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            values.extend(statuses)
        if experiment is not None:
            where.append("experiment = ?")
            values.append(experiment)
        if schedule is not None:
            where.append("schedule = ?")
            values.append(schedule)
        if trigger is not None:  # a whole trigger, or a kind (both indexed)
            where.append("trigger = ?" if ":" in trigger else "trigger_kind = ?")
            values.append(trigger)
        if before is not None:
            where.append("id < ?")
            values.append(before)
        sql = f"SELECT {_RUN_COLUMNS} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC"
        if limit:
            sql += " LIMIT ?"
            values.append(limit)
        return [_run(row) for row in self._db.execute(sql, values)]

    def run_metrics(self, run_ids: Sequence[str]) -> dict[str, list[Metric]]:
        """Run id → its metrics in the order they were logged (runs without any are left out)."""
        found: dict[str, list[Metric]] = {}
        for start in range(0, len(run_ids), IDS_PER_QUERY):
            batch = list(run_ids[start : start + IDS_PER_QUERY])
            rows = self._db.execute(
                f"SELECT {_METRIC_COLUMNS} FROM metrics "
                f"WHERE run_id IN ({', '.join('?' * len(batch))}) ORDER BY logged_at, id",
                batch,
            )
            for row in rows:
                found.setdefault(row[0], []).append(_metric(row))
        return found

    # -- fires and schedules -----------------------------------------------------------------

    def list_fires(self, schedule: str | None = None, *, limit: int = 20) -> list[FireRecord]:
        """Newest first; ``limit`` 0 = all."""
        sql = "SELECT schedule, nominal_time, path, outcome, reason, run_id, created_at FROM fires"
        values: list[Any] = []
        if schedule is not None:
            sql += " WHERE schedule = ?"
            values.append(schedule)
        sql += " ORDER BY id DESC"
        if limit:
            sql += " LIMIT ?"
            values.append(limit)
        return [
            FireRecord(
                schedule=row[0],
                nominal_time=_time(row[1]),
                path=row[2],
                outcome=FireOutcome(row[3]),
                reason=row[4],
                run_id=row[5],
                created_at=_time(row[6]),
            )
            for row in self._db.execute(sql, values)
        ]

    def schedule_states(self) -> dict[str, ScheduleState]:
        rows = self._db.execute(
            "SELECT name, source, registered_at, override, last_fire_time, last_outcome, "
            "last_run_id, definition, schedule_id FROM schedules"
        )
        return {
            row[0]: ScheduleState(
                name=row[0],
                source=row[1],
                registered_at=_time(row[2]),
                override=None if row[3] is None else bool(row[3]),
                last_fire_time=_time(row[4]),
                last_outcome=FireOutcome(row[5]) if row[5] is not None else None,
                last_run_id=row[6],
                definition=_json(row[7]),
                schedule_id=row[8],
            )
            for row in rows
        }

    def api_schedules(self) -> list[ScheduleState]:
        """Every API schedule, oldest first (as ``Store.api_schedules``)."""
        return sorted(
            (state for state in self.schedule_states().values() if state.source == "api"),
            key=lambda state: (state.registered_at or datetime.min.replace(tzinfo=UTC), state.name),
        )

    # -- the file-drop ledger ----------------------------------------------------------------

    def claimed_files(self, schedule: str) -> list[FileKey]:
        """Files claimed but not yet given a run, oldest first."""
        rows = self._db.execute(
            "SELECT path, size, mtime_ns FROM fires WHERE schedule = ? AND outcome = 'claimed' "
            "AND path IS NOT NULL ORDER BY id",
            (schedule,),
        )
        return [FileKey(p or "", int(s or 0), int(m or 0)) for p, s, m in rows]

    def last_file(self, schedule: str) -> str | None:
        """The path of the file most recently given a run."""
        row = self._db.execute(
            "SELECT path FROM fires WHERE schedule = ? AND path IS NOT NULL "
            "AND outcome = 'started' ORDER BY updated_at DESC, id DESC LIMIT 1",
            (schedule,),
        ).fetchone()
        return None if row is None else str(row[0])

    def count_file_fires(self, schedule: str, *, outcome: str | None = None) -> int:
        """The schedule's ledger rows; only those with ``outcome`` when given."""
        sql = "SELECT count(*) FROM fires WHERE schedule = ? AND path IS NOT NULL"
        values: list[Any] = [schedule]
        if outcome is not None:
            sql += " AND outcome = ?"
            values.append(FireOutcome(outcome).value)
        row = self._db.execute(sql, values).fetchone()
        return int(row[0])

    # -- published pipelines -----------------------------------------------------------------

    def list_published(self) -> list[PublishedEntry]:
        """Published versions by pipeline, then in publishing order; ``is_default`` as the
        store's: the endpoint's default version, unless the endpoint now runs another
        pipeline."""
        rows = self._db.execute(
            "SELECT p.pipeline, p.version, p.description, p.content_hash, p.snapshot_dir, "
            "p.published_at, e.default_version, "
            "NULLIF(COALESCE(e.default_pipeline, e.pipeline), e.pipeline) "
            "FROM published_pipelines p LEFT JOIN pipeline_endpoints e ON e.pipeline = p.pipeline "
            "ORDER BY p.pipeline, p.id"
        )
        return [
            PublishedEntry(
                pipeline=row[0],
                version=row[1],
                description=row[2],
                content_hash=row[3],
                snapshot_dir=row[4],
                published_at=_required_time(row[5]),
                is_default=row[1] == row[6] and row[7] is None,
            )
            for row in rows
        ]

    # -- the model registry ------------------------------------------------------------------

    def get_model(self, name: str, version: int | None = None) -> ModelRecord:
        """Version ``version`` of ``name``, or its latest; NotFound naming what exists."""
        sql = f"SELECT {_MODEL_COLUMNS} FROM models WHERE name = ?"
        values: list[Any] = [name]
        if version is not None:
            sql += " AND version = ?"
            values.append(version)
        row = self._db.execute(sql + " ORDER BY version DESC LIMIT 1", values).fetchone()
        if row is not None:
            return _model(row)
        versions = [
            r[0]
            for r in self._db.execute(
                "SELECT version FROM models WHERE name = ? ORDER BY version", (name,)
            )
        ]
        if not versions:
            raise NotFound(f"no model named {name!r}", hint="list them with: pipesched models")
        known = ", ".join(map(str, versions))
        raise NotFound(f"model {name!r} has no version {version}", hint=f"versions: {known}")

    def list_models(
        self,
        name: str | None = None,
        *,
        tags: Mapping[str, str | None] | None = None,
        properties: Mapping[str, str | None] | None = None,
        run_id: str | None = None,
        latest: bool = False,
    ) -> list[ModelRecord]:
        """Models by name, newest version first; filters as ``ModelRepository.list_models``."""
        where: list[str] = []
        values: list[Any] = []
        if name is not None:
            where.append("name = ?")
            values.append(name)
        if run_id is not None:
            where.append("run_id = ?")
            values.append(run_id)
        sql = f"SELECT {_MODEL_COLUMNS} FROM models"
        if where:
            sql += " WHERE " + " AND ".join(where)
        records = [
            _model(row) for row in self._db.execute(sql + " ORDER BY name, version DESC", values)
        ]
        if latest:
            newest: dict[str, ModelRecord] = {}
            for record in records:
                newest.setdefault(record.name, record)
            records = list(newest.values())
        return [
            r
            for r in records
            if _matches(r.tags, tags or {}) and _matches(r.properties, properties or {})
        ]


# -- rows to records --------------------------------------------------------------------------


def _time(value: str | None) -> datetime | None:
    """A stored time: SQLite keeps naive UTC text; the records carry aware UTC datetimes."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _required_time(value: str) -> datetime:
    moment = _time(value)
    assert moment is not None
    return moment


def _json(value: str | float | None) -> Any:
    """A JSON column: text, except a bare number, which the column's numeric affinity keeps
    as a number."""
    return json.loads(value) if isinstance(value, str) else value


def _run(row: Iterable[Any]) -> RunRecord:
    (
        run_id,
        pipeline,
        version,
        content_hash,
        experiment,
        status,
        status_reason,
        recovered,
        trigger,
        schedule,
        parameters,
        owner_host,
        owner_pid,
        owner_start_ticks,
        created_at,
        started_at,
        finished_at,
        nominal_time,
        interval_start,
        interval_end,
        nominal_zone,
    ) = row
    owner = None
    if owner_host is not None and owner_pid is not None:
        owner = Owner(owner_host, owner_pid, owner_start_ticks or 0)
    return RunRecord(
        id=run_id,
        pipeline=pipeline,
        version=version,
        content_hash=content_hash,
        experiment=experiment,
        status=RunStatus(status),
        status_reason=status_reason,
        recovered=bool(recovered),
        trigger=trigger,
        schedule=schedule,
        created_at=_required_time(created_at),
        started_at=_time(started_at),
        finished_at=_time(finished_at),
        parameters=dict(_json(parameters) or {}),
        owner=owner,
        times=_run_times(created_at, nominal_time, interval_start, interval_end, nominal_zone),
    )


def _run_times(
    created_at: Any, nominal_time: Any, start: Any, end: Any, zone: str | None
) -> RunTimes:
    """As ``queries.run_times``: a run without a nominal time stands for its creation."""
    has_interval = start is not None and end is not None
    return RunTimes(
        nominal_time=_required_time(nominal_time if nominal_time is not None else created_at),
        interval_start=_time(start) if has_interval else None,
        interval_end=_time(end) if has_interval else None,
        zone=zone,
    )


def _attempt(row: Sequence[Any]) -> StepAttempt:
    return StepAttempt(
        run_id=row[0],
        step=row[1],
        attempt=row[2],
        display_name=row[3],
        type=row[4],
        status=StepStatus(row[5]),
        status_reason=row[6],
        exit_code=row[7],
        started_at=_time(row[8]),
        finished_at=_time(row[9]),
        pid=row[10],
        pgid=row[11],
        proc_start_ticks=row[12],
        log_path=row[13],
        workdir=row[14],
        fingerprint=row[15],
        reused_from=row[16],
        outputs=dict(_json(row[17]) or {}),
    )


def _metric(row: Sequence[Any]) -> Metric:
    return Metric(
        step=row[1],
        attempt=row[2],
        name=row[3],
        kind=row[4],
        value=_json(row[5]),
        logged_at=_required_time(row[6]),
    )


def _model(row: Sequence[Any]) -> ModelRecord:
    return ModelRecord(
        name=row[0],
        version=row[1],
        path=row[2],
        tags=dict(_json(row[3]) or {}),
        properties=dict(_json(row[4]) or {}),
        description=row[5],
        run_id=row[6],
        step=row[7],
        created_at=_required_time(row[8]),
    )


def _matches(values: Mapping[str, Any], wanted: Mapping[str, str | None]) -> bool:
    return all(
        key in values and (value is None or _text(values[key]) == value)
        for key, value in wanted.items()
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)
