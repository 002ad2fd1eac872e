"""Bring a database to the schema this code expects, cheaply when it is already there.

Every ``Store.open`` calls ``ensure_schema``. The common case — a database at head — costs one
small query and never imports Alembic (the CLI opens the store on every command). Otherwise
Alembic upgrades it inside one transaction, serialised between processes: on SQLite by an
``flock`` on a file beside the database plus ``BEGIN IMMEDIATE``, on PostgreSQL by a
transaction-level advisory lock. The loser of a race finds the schema at head and does nothing.

Before it migrates an existing SQLite database, it copies it beside itself, so the pipesched
before the upgrade can be reinstalled with its store. A database that a newer pipesched
migrated is refused, naming that pipesched's version (``store_info``, written by every
migration) and the copy to go back to; nothing in it is changed.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, delete, func, insert, inspect, select, text

from scheduler import __version__
from scheduler.core.errors import PipeschedError
from scheduler.store.backup import (
    copy_database,
    forget_old_backups,
    pg_dump_command,
    pre_migration_backups,
    pre_migration_path,
    read_copy,
)
from scheduler.store.engine import WRITE_OPTION, sqlite_path
from scheduler.store.models import StoreInfoRow

if TYPE_CHECKING:
    from alembic.config import Config

# The newest revision in migrations/versions; a test checks it against Alembic's own head.
HEAD_REVISION = "0016"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
ADVISORY_LOCK_KEY = zlib.crc32(b"pipesched:migrate")


def current_revision(conn: Connection) -> str | None:
    """The revision in ``alembic_version``, or None for a database Alembic never touched."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def schema_behind(engine: Engine) -> int:
    """How far the database's schema is from this pipesched's: 0 at ``HEAD_REVISION``, above 0
    when it is older (a migration is due), below 0 when a newer pipesched wrote it."""
    with engine.connect() as conn:
        revision = current_revision(conn)
    if revision is None:
        return int(HEAD_REVISION)
    try:
        return int(HEAD_REVISION) - int(revision)
    except ValueError:  # not one of ours: whoever wrote it is newer
        return -1


def ensure_schema(engine: Engine) -> None:
    """Upgrade the database behind ``engine`` to ``HEAD_REVISION`` unless it is there already.

    A database a newer pipesched migrated is refused (``SchemaTooNew``) and left untouched. An
    existing SQLite database is copied beside itself first (``<db>.pre-<revision>-<time>.bak``,
    the newest few kept), so that going back to this pipesched's predecessor stays possible.
    """
    with engine.connect() as conn:
        revision = current_revision(conn)
        if revision == HEAD_REVISION:
            return
        if revision is not None and not _known(revision):
            raise _too_new(conn, revision, engine)
    with _process_lock(engine), engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(select(func.pg_advisory_xact_lock(ADVISORY_LOCK_KEY)))
        revision = current_revision(conn)
        if revision == HEAD_REVISION:
            return  # another process migrated it meanwhile
        if revision is not None and not _known(revision):
            raise _too_new(conn, revision, engine)
        if revision is not None:
            # Inside the write transaction: the copy is exactly what is migrated.
            _keep_a_way_back(engine, revision)
        _upgrade(conn)
        _record_migration(conn)


class SchemaTooNew(PipeschedError):
    """A newer pipesched migrated the store: this one may not use it."""


def alembic_config(conn: Connection | None = None) -> Config:
    """Alembic's config, built in code: no alembic.ini is needed at run time."""
    from alembic.config import Config  # lazy: a store at head never loads Alembic

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = conn
    return config


def _upgrade(conn: Connection) -> None:
    from alembic import command  # lazy: Alembic loads only when a migration is due

    command.upgrade(alembic_config(conn), "head")


def _known(revision: str) -> bool:
    """Whether ``revision`` is one of this pipesched's migrations."""
    # Lazy: Alembic loads only when the database is not at head.
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False


def _record_migration(conn: Connection) -> None:
    """Write down which pipesched migrated the store, for an older one to name."""
    facts = {
        "migrated_by": __version__,
        "migrated_at": datetime.now(UTC).isoformat(),
        "schema_revision": HEAD_REVISION,
    }
    conn.execute(delete(StoreInfoRow).where(StoreInfoRow.key.in_(list(facts))))
    conn.execute(
        insert(StoreInfoRow), [{"key": key, "value": value} for key, value in facts.items()]
    )


def store_facts(conn: Connection) -> dict[str, str]:
    """What the store says about itself (``store_info``); empty before that table existed."""
    if not inspect(conn).has_table("store_info"):
        return {}
    rows = conn.execute(text("SELECT key, value FROM store_info")).all()
    return {str(key): str(value) for key, value in rows}


def _too_new(conn: Connection, revision: str, engine: Engine) -> SchemaTooNew:
    needed = store_facts(conn).get("migrated_by")
    message = (
        f"the store is at schema revision {revision!r}, newer than this pipesched "
        f"({__version__}, schema {HEAD_REVISION}) knows"
    )
    if needed and needed != __version__:
        message += f"; pipesched {needed} migrated it"
        hint = f"it was written by a newer pipesched: install pipesched {needed} or later"
    elif needed:  # builds of one version with different schemas: a development tree
        message += f"; another build of pipesched {needed} migrated it"
        hint = "it was written by a newer pipesched: install that build again"
    else:
        hint = "it was written by a newer pipesched: install that pipesched again"
    way_back = _way_back(engine)
    if way_back:
        hint += f", or go back to the store as it was before that upgrade: {way_back}"
    return SchemaTooNew(message, hint=hint)


def _way_back(engine: Engine) -> str | None:
    """How to restore the store as this pipesched last knew it, when a copy of it is at hand."""
    database = sqlite_path(engine.url)
    if database is None:
        if engine.dialect.name == "postgresql":
            return "restore the pg_dump taken before it (pg_restore --clean)"
        return None
    for copy in pre_migration_backups(database):
        try:
            revision, _ = read_copy(copy)
        except sqlite3.Error:
            continue
        if revision is not None and _known(revision):
            return (
                f"stop pipesched, copy {copy} over {database} and delete {database}-wal and "
                f"{database}-shm (what was recorded since is lost)"
            )
    return None


def _keep_a_way_back(engine: Engine, revision: str) -> None:
    """Before migrating an existing store: copy a SQLite file beside itself; on PostgreSQL,
    say that a pg_dump is the way back (a migration never waits for one)."""
    log = _logger()
    database = sqlite_path(engine.url)
    if database is None:
        if engine.dialect.name == "postgresql":
            log.warning(
                "store_migrating",
                from_revision=revision,
                to_revision=HEAD_REVISION,
                backup=None,
                hint="pipesched keeps no copy of a PostgreSQL store: take one with "
                + pg_dump_command(engine.url, Path(f"pipesched-pre-{HEAD_REVISION}.dump"))
                + " before upgrading, to be able to go back",
            )
        return
    target = pre_migration_path(database, HEAD_REVISION, datetime.now(UTC))
    try:
        copy = copy_database(database, target)
    except (OSError, sqlite3.Error) as exc:
        raise PipeschedError(
            f"could not copy the store to {target} before migrating it to schema "
            f"{HEAD_REVISION}: {exc}",
            hint="nothing was changed; make room beside the database and start again",
        ) from None
    removed = forget_old_backups(database)
    log.info(
        "store_migrating",
        from_revision=revision,
        to_revision=HEAD_REVISION,
        backup=str(copy.path),
        backup_bytes=copy.size_bytes,
        runs=copy.runs,
        seconds=round(copy.seconds, 3),
        removed_backups=[str(path) for path in removed],
    )


def _logger() -> Any:
    """The process's structlog logger once it configured logging (the daemon), else one on
    stderr: a command's stdout is its output (``--json``), never a log line."""
    import structlog  # lazy: a store at head never loads structlog

    if structlog.is_configured():
        return structlog.get_logger("scheduler.store.migrate")
    from scheduler.core.logging import stderr_logger  # lazy: only when a migration is due

    return stderr_logger("info")


@contextmanager
def _process_lock(engine: Engine) -> Iterator[None]:
    """An exclusive ``flock`` next to a SQLite file; a no-op elsewhere (PostgreSQL locks in
    the transaction, and an in-memory database has one process)."""
    path = sqlite_path(engine.url)
    if path is None:
        yield
        return
    lock_path = path.with_name(path.name + "-migrate.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the flock
