"""Whether the store can be written now, and the SQLite WAL kept small.

``probe_write`` opens a write transaction and rolls it back: on SQLite ``BEGIN IMMEDIATE`` takes
the write lock (it waits ``busy_timeout`` for another writer, fails on a read-only or broken
file) and ``ROLLBACK`` lets it go, so nothing is written and no reader or writer is disturbed;
on PostgreSQL ``txid_current()`` makes the transaction a writing one (refused on a read-only
server or transaction) and it is rolled back likewise. Cost: one lock round trip, no page
written. A full disk is not seen by a probe that writes nothing: on SQLite the probe also reads
the free space of the database's filesystem, and the first real write that fails reports it too
(every store call reports its failure here, ``StoreHealth.failed``).

``checkpoint`` runs ``PRAGMA wal_checkpoint(TRUNCATE)`` on SQLite: every page of the WAL is copied
back into the database and the WAL file is cut to 0 bytes. SQLite's own automatic checkpoints
(every 1000 pages) never shrink the file.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from scheduler.store.engine import WRITE_OPTION, sqlite_path


class StoreHealth:
    """The reason the store cannot be written now, or None; set from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reason: str | None = None
        self._outages = 0

    @property
    def unwritable(self) -> str | None:
        return self._reason

    @property
    def outages(self) -> int:
        """How many times the store went from writable to unwritable: a watcher that saw this
        number change knows an outage began since it last looked, however short it was."""
        return self._outages

    def failed(self, reason: str) -> None:
        with self._lock:
            if self._reason is None:
                self._outages += 1
            self._reason = reason or "unknown error"

    def succeeded(self) -> None:
        with self._lock:
            self._reason = None


class UpkeepRepository:
    """The store's own upkeep: whether it can be written (``health``), and the WAL."""

    def __init__(self, engine: Engine, health: StoreHealth) -> None:
        self._engine, self._health = engine, health

    def probe_write(self) -> str | None:
        """Open a write transaction and roll it back; the reason the store cannot be written,
        or None. Marks the store's health either way."""
        try:
            probe_write(self._engine)
            problem = disk_room_problem(self._engine)
        except DBAPIError as exc:
            problem = failure_reason(exc)
        if problem is None:
            self._health.succeeded()
        else:
            self._health.failed(problem)
        return self._health.unwritable

    def wal_bytes(self) -> int:
        """The size of SQLite's WAL file now (0 without one, or on PostgreSQL)."""
        return wal_bytes(self._engine)

    def checkpoint(self) -> bool:
        """Copy SQLite's WAL into the database and truncate it; False when readers kept it
        from finishing (the next one goes on)."""
        return checkpoint(self._engine)


def failure_reason(exc: DBAPIError) -> str:
    """The driver's own words: ``database is locked``, ``database or disk is full``..."""
    words = str(exc.orig) if exc.orig is not None else str(exc)
    return " ".join(words.split()) or type(exc).__name__


DISK_FLOOR_BYTES = 1024 * 1024  # room for a few transactions' WAL frames


def disk_room_problem(engine: Engine) -> str | None:
    """SQLite: ``database or disk is full`` (SQLite's own words) when the database's filesystem
    has less than ``DISK_FLOOR_BYTES`` left for this process, since a probe that writes nothing
    cannot see it. None on PostgreSQL (the server's disk is not ours to see)."""
    database = sqlite_path(engine.url)
    if database is None:
        return None
    try:
        stat = os.statvfs(database.parent)
    except OSError:
        return None
    # root may also use the blocks reserved for it, and SQLite's writes will.
    blocks = stat.f_bfree if os.geteuid() == 0 else stat.f_bavail
    free = blocks * stat.f_frsize
    if free >= DISK_FLOOR_BYTES:
        return None
    return f"database or disk is full: {free} bytes free on {database.parent}"


def probe_write(engine: Engine) -> None:
    """Open a write transaction and roll it back; raises DBAPIError when the store cannot be
    written."""
    writer = engine.execution_options(**{WRITE_OPTION: True})  # SQLite: BEGIN IMMEDIATE
    with writer.connect() as conn, conn.begin() as transaction:
        if engine.dialect.name != "sqlite":
            conn.execute(text("SELECT txid_current()"))
        transaction.rollback()


def wal_path(engine: Engine) -> Path | None:
    database = sqlite_path(engine.url)
    return None if database is None else database.with_name(database.name + "-wal")


def wal_bytes(engine: Engine) -> int:
    """The size of the SQLite WAL file (0 without one, or on PostgreSQL)."""
    path = wal_path(engine)
    if path is None:
        return 0
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def checkpoint(engine: Engine) -> bool:
    """Copy the WAL into the database and truncate it (SQLite; nothing elsewhere). False when a
    reader kept it from finishing: the next checkpoint goes on."""
    if wal_path(engine) is None:
        return True
    # The DBAPI connection itself: SQLAlchemy would open a transaction around the pragma first,
    # and a checkpoint cannot run inside one.
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        try:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            row = cursor.fetchone()
        finally:
            cursor.close()
    finally:
        raw.close()
    return row is not None and int(row[0]) == 0
