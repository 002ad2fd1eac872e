"""Engines for pipesched's database, set up the way the store relies on.

SQLite: WAL (readers never block the writer), ``busy_timeout`` (a second writer waits instead
of failing), foreign keys on (SQLite leaves them off by default, and ON DELETE CASCADE needs
them) and ``synchronous=FULL`` (under NORMAL a power loss can undo commits).
pysqlite's own transaction handling is turned off in favour of explicit BEGINs (SQLAlchemy's
documented recipe), so DDL in migrations is transactional and writes can ``BEGIN IMMEDIATE``:
a write transaction that starts deferred and upgrades its lock later can fail at once with
"database is locked" in WAL mode, whatever the busy timeout.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from scheduler.core.errors import PipeschedError
from scheduler.store.private_files import create_private_file

BUSY_TIMEOUT_MS = 5000
SQLITE_PRAGMAS = (
    # busy_timeout first: switching a fresh file to WAL takes a lock that another process
    # opening the same file may hold for a moment.
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA synchronous=FULL",
)
# Execution option that makes SQLite open the transaction with BEGIN IMMEDIATE.
WRITE_OPTION = "pipesched_write"


def is_memory_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def sqlite_path(url: URL) -> Path | None:
    """The database file of a SQLite URL, or None for an in-memory database."""
    if url.get_backend_name() != "sqlite" or is_memory_sqlite(url):
        return None
    return Path(url.database or "")


def make_engine(url: str | URL) -> Engine:
    """An engine for ``url`` with pipesched's connection settings applied."""
    url = make_url(url)
    if url.get_backend_name() != "sqlite":
        if url.drivername == "postgresql":  # SQLAlchemy's default would be psycopg2
            url = url.set(drivername="postgresql+psycopg")
        try:
            # pre_ping: the daemon keeps connections for days; a restarted server must not
            # surface as an error on the next write.
            return create_engine(url, pool_pre_ping=True)
        except ImportError as exc:
            raise _missing_driver(url, exc) from None
    kwargs: dict[str, object] = {}
    if is_memory_sqlite(url):
        # One shared connection, or every thread would see its own empty database.
        kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    else:
        path = sqlite_path(url)
        assert path is not None
        create_private_file(path)
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def end_stalled_transactions(engine: Engine, seconds: float) -> None:
    """Have the PostgreSQL server end this engine's sessions that sit inside a transaction for
    more than ``seconds`` (``idle_in_transaction_session_timeout``). A leader stopped in the
    middle of a write holds the leadership row: this lets a standby's takeover through once
    the leader's lease has lapsed. Applies to connections made from now on."""

    def on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET idle_in_transaction_session_timeout = {int(seconds * 1000)}")
        cursor.close()
        dbapi_connection.commit()

    event.listen(engine, "connect", on_connect)
    engine.dispose()  # connections made before this get the setting too, when made again


def _missing_driver(url: URL, exc: ImportError) -> PipeschedError:
    if url.get_driver_name() == "psycopg":
        return PipeschedError(
            "a PostgreSQL store needs psycopg, which is not installed: "
            "pip install 'pipesched[postgres]'"
        )
    return PipeschedError(f"no database driver for {url.drivername} URLs: {exc}")


def _sqlite_connect(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, see _sqlite_begin
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            _execute_pragma(cursor, pragma)
    finally:
        cursor.close()


def _execute_pragma(cursor: sqlite3.Cursor, pragma: str) -> None:
    """Run a pragma, retrying "database is locked" for up to the busy timeout: switching a
    brand-new file to WAL needs an exclusive lock and SQLite reports SQLITE_BUSY for it at once,
    without its busy handler, when another process is opening the same file (seen under load)."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.001
    while True:
        try:
            cursor.execute(pragma)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


def _sqlite_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get(WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
