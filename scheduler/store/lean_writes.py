"""The records of a foreground run written with the standard library's sqlite3 alone.

``pipesched run`` of a compiled pipeline (``scheduler.definitions.compiled``) must not pay for
SQLAlchemy's import before its first step starts. It writes the same rows, with the same column
encodings, as ``runs.py`` and ``published.py`` write through SQLAlchemy (times as naive UTC
``YYYY-MM-DD HH:MM:SS.ffffff``, JSON as ``json.dumps`` text); a test reads them back through the
``Store``. The connection is set up as ``engine.py`` sets SQLite up (the same pragmas, explicit
``BEGIN IMMEDIATE`` for writes). The run is created in one transaction; the writes after it are
operations that ``commit`` applies together in one transaction, committed before it returns, so
the executor can record a step's end and the next step's start with one sync to disk. A database not at ``schema_revision`` is refused (``LeanStoreRefused``) before anything
is written: the full store then migrates it.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from scheduler.core.ids import new_run_id
from scheduler.core.procinfo import Owner
from scheduler.store.jsonvalues import json_safe

#: The same as ``engine.SQLITE_PRAGMAS`` (a test holds them equal).
SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout=5000",
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA synchronous=FULL",
)
_ID_ATTEMPTS = 5
Op = Callable[[sqlite3.Connection], None]
"""One write, applied inside a transaction that ``LeanRunWriter.commit`` opens and commits."""
_METRIC_KINDS = frozenset({"scalar", "list", "row", "table", "image"})


class LeanStoreRefused(Exception):
    """The database is not one this writer may write to as it stands: use the full store."""


def stamp(moment: datetime) -> str:
    """A time as SQLAlchemy keeps a ``UTCDateTime`` in SQLite: naive UTC, microseconds always."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


class LeanRunWriter:
    """One run's writes on one connection."""

    def __init__(self, database: str, schema_revision: str) -> None:
        if not os.path.isfile(database):
            raise LeanStoreRefused(f"no database at {database}")
        self._conn = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
        try:
            for pragma in SQLITE_PRAGMAS:
                self._conn.execute(pragma)
            row = self._conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.Error as exc:
            self._conn.close()
            raise LeanStoreRefused(str(exc)) from exc
        if row is None or row[0] != schema_revision:
            self._conn.close()
            raise LeanStoreRefused(f"schema {row and row[0]} is not {schema_revision}")

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # -- the run -------------------------------------------------------------------------------

    def create_running_run(
        self,
        *,
        pipeline: str,
        content_hash: str,
        definition: Mapping[str, Any],
        experiment: str,
        parameters: Mapping[str, Any],
        steps: Sequence[tuple[str, str, str]],
        owner: Owner,
    ) -> tuple[str, datetime]:
        """Record the working copy's version (once per content), the run and a pending first
        attempt of each (step id, display name, type), and start the run: one transaction, as
        ``create_run`` then ``start_run`` leave it. Returns the run's id and creation time."""
        for tries_left in range(_ID_ATTEMPTS - 1, -1, -1):
            now = datetime.now(UTC)
            run_id = new_run_id(now)
            try:
                with self._write() as conn:
                    version_id = self._pipeline_version(conn, pipeline, content_hash, definition)
                    conn.execute(
                        "INSERT INTO runs (id, pipeline, version, pipeline_version_id, "
                        "content_hash, experiment, status, status_reason, recovered, trigger, "
                        "trigger_kind, schedule, parameters, owner_host, owner_pid, "
                        "owner_start_ticks, created_at, started_at, finished_at, "
                        "nominal_time, interval_start, interval_end, nominal_zone) "
                        "VALUES (?, ?, NULL, ?, ?, ?, 'running', NULL, 0, 'manual', 'manual', "
                        "NULL, ?, ?, ?, ?, ?, ?, NULL, ?, NULL, NULL, NULL)",
                        (
                            run_id,
                            pipeline,
                            version_id,
                            content_hash,
                            experiment,
                            json.dumps(dict(parameters)),
                            owner.host,
                            owner.pid,
                            owner.start_ticks,
                            stamp(now),
                            stamp(now),
                            stamp(now),  # a manual run stands for when it was asked for
                        ),
                    )
                    conn.executemany(
                        "INSERT INTO step_runs (run_id, step, attempt, display_name, type, "
                        "status, outputs) VALUES (?, ?, 1, ?, ?, 'pending', '{}')",
                        [(run_id, step, name, kind) for step, name, kind in steps],
                    )
                return run_id, now
            except sqlite3.IntegrityError:
                if not tries_left or not self._run_exists(run_id):
                    raise
        raise AssertionError("unreachable")

    def _run_exists(self, run_id: str) -> bool:
        found = self._conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone()
        return found is not None

    @staticmethod
    def _pipeline_version(
        conn: sqlite3.Connection, pipeline: str, content_hash: str, definition: Mapping[str, Any]
    ) -> int:
        found = conn.execute(
            "SELECT id FROM pipeline_versions WHERE pipeline = ? AND content_hash = ? "
            "AND version IS NULL",
            (pipeline, content_hash),
        ).fetchone()
        if found is not None:
            return int(found[0])
        cursor = conn.execute(
            "INSERT INTO pipeline_versions (pipeline, version, content_hash, definition, "
            "created_at) VALUES (?, NULL, ?, ?, ?)",
            (pipeline, content_hash, json.dumps(dict(definition)), stamp(datetime.now(UTC))),
        )
        return int(cursor.lastrowid or 0)

    def commit(self, ops: Sequence[Op]) -> None:
        """Apply ``ops`` (made by the functions below) in one transaction: all or none."""
        with self._write() as conn:
            for op in ops:
                op(conn)

    def find_reusable(self, fingerprint: str) -> tuple[str, str | None, dict[str, str]] | None:
        """(run id, reused_from, outputs) of the newest completed attempt with this fingerprint."""
        row = self._conn.execute(
            "SELECT run_id, reused_from, outputs FROM step_runs "
            "WHERE fingerprint = ? AND status = 'completed' "
            "ORDER BY finished_at IS NULL, finished_at DESC, id DESC LIMIT 1",
            (fingerprint,),
        ).fetchone()
        if row is None:
            return None
        return row[0], row[1], json.loads(row[2] or "{}")


# -- writes, as operations a caller may group into one transaction (``LeanRunWriter.commit``) ---


def finish_run(run_id: str, status: str, reason: str | None) -> Op:
    finished = stamp(datetime.now(UTC))

    def op(conn: sqlite3.Connection) -> None:
        conn.execute(
            "UPDATE runs SET status = ?, status_reason = ?, finished_at = ? WHERE id = ?",
            (status, reason, finished, run_id),
        )

    return op


def begin_attempt(
    run_id: str, step: str, attempt: int, *, fingerprint: str, log_path: str, workdir: str
) -> Op:
    """Attempt 1 is the pending row made with the run; a retry is a new row."""
    now = stamp(datetime.now(UTC))

    def op(conn: sqlite3.Connection) -> None:
        if attempt == 1:
            conn.execute(
                "UPDATE step_runs SET status = 'running', started_at = ?, fingerprint = ?, "
                "log_path = ?, workdir = ? WHERE run_id = ? AND step = ? AND attempt = 1",
                (now, fingerprint, log_path, workdir, run_id, step),
            )
            return
        conn.execute(
            "INSERT INTO step_runs (run_id, step, attempt, display_name, type, status, "
            "started_at, fingerprint, log_path, workdir, outputs) "
            "SELECT run_id, step, ?, display_name, type, 'running', ?, ?, ?, ?, '{}' "
            "FROM step_runs WHERE run_id = ? AND step = ? ORDER BY attempt LIMIT 1",
            (attempt, now, fingerprint, log_path, workdir, run_id, step),
        )

    return op


def set_attempt_process(
    run_id: str, step: str, attempt: int, *, pid: int, start_ticks: int | None
) -> Op:
    def op(conn: sqlite3.Connection) -> None:
        conn.execute(
            "UPDATE step_runs SET pid = ?, pgid = ?, proc_start_ticks = ? "
            "WHERE run_id = ? AND step = ? AND attempt = ?",
            (pid, pid, start_ticks, run_id, step, attempt),
        )

    return op


def end_attempt(
    run_id: str,
    step: str,
    attempt: int,
    *,
    status: str,
    exit_code: int | None,
    reason: str | None,
    outputs: Mapping[str, str] | None,
    metrics: Sequence[Mapping[str, Any]] = (),
) -> Op:
    """The attempt's end and the metrics it logged (each ``{name, kind, value, time}``), in
    one operation: metrics are never committed after the end that reports them."""
    rows = [
        (
            run_id,
            step,
            attempt,
            m["name"],
            m["kind"],
            json.dumps(json_safe(m["value"])),
            stamp(datetime.fromtimestamp(m.get("time", 0), UTC)),
        )
        for m in metrics
        if m.get("kind") in _METRIC_KINDS
    ]
    assignments = "status = ?, exit_code = ?, status_reason = ?, finished_at = ?"
    values: list[Any] = [status, exit_code, reason, stamp(datetime.now(UTC))]
    if outputs is not None:
        assignments += ", outputs = ?"
        values.append(json.dumps(dict(outputs)))

    def op(conn: sqlite3.Connection) -> None:
        if rows:
            conn.executemany(
                "INSERT INTO metrics (run_id, step, attempt, name, kind, value, logged_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        conn.execute(
            f"UPDATE step_runs SET {assignments} WHERE run_id = ? AND step = ? AND attempt = ?",
            (*values, run_id, step, attempt),
        )

    return op


def mark_step(run_id: str, step: str, *, status: str, reason: str | None) -> Op:
    """The step's latest attempt (a pending step skipped or canceled)."""
    now = stamp(datetime.now(UTC))

    def op(conn: sqlite3.Connection) -> None:
        conn.execute(
            "UPDATE step_runs SET status = ?, status_reason = ?, finished_at = ? "
            "WHERE run_id = ? AND step = ? AND attempt = "
            "(SELECT max(attempt) FROM step_runs WHERE run_id = ? AND step = ?)",
            (status, reason, now, run_id, step, run_id, step),
        )

    return op


def record_reuse(
    run_id: str, step: str, *, reused_from: str, fingerprint: str, outputs: dict[str, str]
) -> Op:
    now = stamp(datetime.now(UTC))

    def op(conn: sqlite3.Connection) -> None:
        conn.execute(
            "UPDATE step_runs SET status = 'reused', reused_from = ?, fingerprint = ?, "
            "outputs = ?, started_at = ?, finished_at = ? WHERE run_id = ? AND step = ? AND "
            "attempt = (SELECT max(attempt) FROM step_runs WHERE run_id = ? AND step = ?)",
            (reused_from, fingerprint, json.dumps(outputs), now, now, run_id, step, run_id, step),
        )

    return op
