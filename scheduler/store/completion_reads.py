"""The few reads shell completion makes, on every TAB: run ids, the steps of a run, metric
names, schedules created through the API. Standard library ``sqlite3`` against the store's file,
read-only, so a completion loads neither SQLAlchemy nor the migrations; any failure (no file
yet, a locked or older database) completes nothing rather than printing an error into the
user's command line. A PostgreSQL store is read through the ``Store`` facade instead (by the
caller), since a server needs a driver anyway.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from urllib.parse import unquote

from scheduler.core.ids import is_id_prefix, normalize_id, prefix_bounds

LATEST = "latest"
# How long a completion waits for a writer's lock before it completes nothing.
BUSY_TIMEOUT_SECONDS = 0.2
# Metric names come from this many of the pipeline's newest runs.
METRIC_RUNS = 50


def sqlite_file(database_url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL, else None (PostgreSQL, in-memory)."""
    scheme, sep, rest = database_url.partition(":///")
    if not sep or scheme.partition("+")[0] != "sqlite":
        return None
    path = unquote(rest.partition("?")[0])
    return Path(path) if path and path != ":memory:" else None


@contextmanager
def _reading(path: Path) -> Iterator[sqlite3.Connection | None]:
    """A read-only connection to ``path``, or None when there is nothing to read."""
    if not path.is_file():
        yield None
        return
    try:
        connection = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_SECONDS
        )
    except sqlite3.Error:
        yield None
        return
    with closing(connection):
        yield connection


def recent_runs(
    path: Path, prefix: str, *, pipeline: str | None = None, limit: int = 50
) -> list[tuple[str, str, str]]:
    """(id, pipeline, status) of the runs whose id starts with ``prefix`` (as typed:
    look-alikes mapped), newest first."""
    wanted = normalize_id(prefix)
    if wanted and not is_id_prefix(wanted):
        return []
    low, high = prefix_bounds(wanted) if wanted else ("", "~")
    sql = "SELECT id, pipeline, status FROM runs WHERE id BETWEEN ? AND ?"
    args: list[object] = [low, high]
    if pipeline:
        sql += " AND pipeline = ?"
        args.append(pipeline)
    sql += " ORDER BY id DESC LIMIT ?"
    args.append(limit)
    return [(row[0], row[1], row[2]) for row in _rows(path, sql, args)]


def run_steps(path: Path, run_ref: str, *, pipeline: str | None = None) -> list[str]:
    """The step ids of the run ``run_ref`` names (a unique prefix or ``latest``), in the order
    they were first recorded; none when it names no single run."""
    if run_ref.strip().lower() == LATEST:
        found = recent_runs(path, "", pipeline=pipeline, limit=1)
    else:
        found = recent_runs(path, run_ref, limit=2)
    if len(found) != 1:
        return []
    sql = "SELECT step FROM step_runs WHERE run_id = ? GROUP BY step ORDER BY MIN(id)"
    return [row[0] for row in _rows(path, sql, [found[0][0]])]


def metric_names(path: Path, pipeline: str) -> list[str]:
    """The metric names logged by the newest runs of ``pipeline``, sorted."""
    sql = (
        "SELECT DISTINCT name FROM metrics WHERE run_id IN "
        "(SELECT id FROM runs WHERE pipeline = ? ORDER BY id DESC LIMIT ?) ORDER BY name"
    )
    return [row[0] for row in _rows(path, sql, [pipeline, METRIC_RUNS])]


def api_schedule_names(path: Path) -> list[str]:
    """Names of the schedules created through the API (those of schedules.yaml are read from
    the file)."""
    sql = "SELECT name FROM schedules WHERE source = 'api' ORDER BY name"
    return [row[0] for row in _rows(path, sql, [])]


def _rows(path: Path, sql: str, args: list[object]) -> list[tuple[str, ...]]:
    with _reading(path) as connection:
        if connection is None:
            return []
        try:
            rows = connection.execute(sql, args).fetchall()
        except sqlite3.Error:
            return []
    return [tuple(str(value) for value in row) for row in rows]
