"""Consistent copies of a SQLite store, taken while a daemon goes on writing it.

SQLite's online backup API copies the database page by page from one read snapshot. The store
runs in WAL mode, where a reader never blocks a writer: the daemon commits throughout the copy.
What a long snapshot does hold up is a ``wal_checkpoint(TRUNCATE)``, which waits for old readers
and makes new writers wait meanwhile (the daemon truncates its WAL about once a minute). So the
copy takes the whole database in one step, as fast as the disk allows, rather than in paced
slices that would only lengthen the snapshot.

A copy is written to a private temporary file beside its target, switched to rollback-journal
mode (one self-contained file, readable without a ``-wal``), synced, and renamed into place: a
crash leaves either no copy or a whole one.

A PostgreSQL store is copied with ``pg_dump``, which pipesched names rather than runs: the dump
must come from a ``pg_dump`` at least as new as the server, and most sites already have theirs.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url

from scheduler.store.engine import sqlite_path
from scheduler.store.private_files import PRIVATE_FILE

BUSY_TIMEOUT_SECONDS = 5.0
# Copies taken before a migration that are kept beside the database, newest first.
KEEP_PRE_MIGRATION_BACKUPS = 3
_STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class CopyFacts:
    """What a finished copy holds, read back from the copy itself."""

    path: Path
    size_bytes: int
    schema_revision: str | None
    runs: int | None
    seconds: float


def utc_stamp(moment: datetime | None = None) -> str:
    """``20261206T234512Z``: sorts as time does, and is safe in a file name."""
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime(_STAMP_FORMAT)


def copy_database(source: Path, target: Path, *, replace: bool = False) -> CopyFacts:
    """Copy the SQLite database ``source`` to ``target`` (mode 0600) from one consistent
    snapshot. An existing ``target`` is refused with ``FileExistsError`` unless ``replace``."""
    if not source.is_file():
        raise FileNotFoundError(source)
    started = time.monotonic()
    temporary = _private_temporary(target)
    try:
        _backup(source, temporary)
        _sync_file(temporary)
        if replace:
            os.replace(temporary, target)
        else:
            _move_without_replacing(temporary, target)
        _sync_folder(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    seconds = time.monotonic() - started
    revision, runs = read_copy(target)
    return CopyFacts(target, target.stat().st_size, revision, runs, seconds)


def read_copy(path: Path) -> tuple[str | None, int | None]:
    """(schema revision, number of runs) of a database file, read-only; None for what it lacks."""
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        revision = _scalar(connection, "SELECT version_num FROM alembic_version")
        runs = _scalar(connection, "SELECT count(*) FROM runs")
    finally:
        connection.close()
    return (None if revision is None else str(revision)), (None if runs is None else int(runs))


@dataclass(frozen=True)
class StorePlace:
    """Where a store's data lives: its SQLite file, or the PostgreSQL server's ``pg_dump``
    command line for a target (None for an in-memory database)."""

    database: Path | None
    postgresql: bool
    has_password: bool

    @classmethod
    def of(cls, database_url: str) -> StorePlace:
        url = make_url(database_url)
        return cls(sqlite_path(url), url.get_backend_name() == "postgresql", bool(url.password))


def pg_dump_command_for(database_url: str, target: Path) -> str:
    """``pg_dump_command`` for a database URL as the config gives it."""
    return pg_dump_command(make_url(database_url), target)


def pg_dump_command(url: URL, target: Path) -> str:
    """The ``pg_dump`` command line that copies the PostgreSQL database of ``url`` to
    ``target``, without the password (``pg_dump`` reads ``$PGPASSWORD`` or ``~/.pgpass``)."""
    without_password = URL.create(
        "postgresql",
        username=url.username,
        host=url.host,
        port=url.port,
        database=url.database,
        query=url.query,
    )
    dsn = without_password.render_as_string(hide_password=False)
    return shlex.join(["pg_dump", "--format=custom", f"--file={target}", f"--dbname={dsn}"])


def pre_migration_path(database: Path, target_revision: str, moment: datetime) -> Path:
    """``<db>.pre-<target revision>-<UTC time>.bak``, beside the database."""
    return database.with_name(f"{database.name}.pre-{target_revision}-{utc_stamp(moment)}.bak")


def pre_migration_backups(database: Path) -> list[Path]:
    """The copies taken before migrations of ``database``, newest first."""
    pattern = re.compile(
        rf"^{re.escape(database.name)}\.pre-(?P<revision>[^-]+)-(?P<stamp>\d{{8}}T\d{{6}}Z)\.bak$"
    )
    found: list[tuple[str, str, Path]] = []
    with contextlib.suppress(FileNotFoundError):
        for entry in database.parent.iterdir():
            match = pattern.match(entry.name)
            if match is not None:
                found.append((match["stamp"], match["revision"], entry))
    return [path for _, _, path in sorted(found, reverse=True)]


def forget_old_backups(database: Path, keep: int = KEEP_PRE_MIGRATION_BACKUPS) -> list[Path]:
    """Delete all but the newest ``keep`` pre-migration copies; the ones deleted."""
    removed = []
    for path in pre_migration_backups(database)[keep:]:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


def _backup(source: Path, target: Path) -> None:
    # Read-only: a copy must never write to the store (nor create it).
    reader = sqlite3.connect(
        f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_SECONDS
    )
    try:
        writer = sqlite3.connect(target, isolation_level=None)
        try:
            reader.backup(writer, pages=-1)
            # One file that opens anywhere, even read-only; the store turns WAL on again when
            # it opens a restored copy.
            writer.execute("PRAGMA journal_mode=DELETE")
        finally:
            writer.close()
    finally:
        reader.close()


def _move_without_replacing(temporary: Path, target: Path) -> None:
    """Rename ``temporary`` to ``target`` unless ``target`` exists (``FileExistsError``). A hard
    link makes that check and the rename one step; on a filesystem without hard links (some
    network shares) the check comes just before the rename."""
    try:
        os.link(temporary, target)
    except FileExistsError:
        raise
    except OSError:
        if os.path.lexists(target):
            raise FileExistsError(target) from None
        os.rename(temporary, target)
        return
    os.unlink(temporary)


def _private_temporary(target: Path) -> Path:
    """An empty 0600 file beside ``target`` (same filesystem: the rename is atomic)."""
    for attempt in range(100):
        candidate = target.with_name(f".{target.name}.{os.getpid()}-{attempt}.tmp")
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            continue
        try:
            os.fchmod(fd, PRIVATE_FILE)  # open's mode is masked by the umask
        finally:
            os.close(fd)
        return candidate
    raise FileExistsError(f"no free temporary name beside {target}")


def _scalar(connection: sqlite3.Connection, query: str) -> Any:
    try:
        row = connection.execute(query).fetchone()
    except sqlite3.Error:
        return None
    return None if row is None else row[0]


def _sync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_folder(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
