"""Bring a database to the schema this code expects, cheaply when it is already there.

Every ``Store.open`` calls ``ensure_schema``. The common case — a database at head — costs one
small query and never imports Alembic (the CLI opens the store on every command). Otherwise
Alembic upgrades it inside one transaction, serialised between processes: on SQLite by an
``flock`` on a file beside the database plus ``BEGIN IMMEDIATE``, on PostgreSQL by a
transaction-level advisory lock. The loser of a race finds the schema at head and does nothing.
"""

from __future__ import annotations

import fcntl
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, func, inspect, select, text

from scheduler.core.errors import PipeschedError
from scheduler.store.engine import WRITE_OPTION, sqlite_path

if TYPE_CHECKING:
    from alembic.config import Config

# The newest revision in migrations/versions; a test checks it against Alembic's own head.
HEAD_REVISION = "0015"
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
    """Upgrade the database behind ``engine`` to ``HEAD_REVISION`` unless it is there already."""
    with engine.connect() as conn:
        if current_revision(conn) == HEAD_REVISION:
            return
    with _process_lock(engine), engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(select(func.pg_advisory_xact_lock(ADVISORY_LOCK_KEY)))
        revision = current_revision(conn)
        if revision != HEAD_REVISION:
            _upgrade(conn, revision)


def alembic_config(conn: Connection | None = None) -> Config:
    """Alembic's config, built in code: no alembic.ini is needed at run time."""
    from alembic.config import Config  # lazy: a store at head never loads Alembic

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = conn
    return config


def _upgrade(conn: Connection, revision: str | None) -> None:
    # Lazy: Alembic loads only when a migration is due, not on every CLI command.
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    config = alembic_config(conn)
    if revision is not None:
        try:
            ScriptDirectory.from_config(config).get_revision(revision)
        except CommandError as error:
            raise PipeschedError(
                f"the database is at schema revision {revision!r}, which this pipesched "
                "does not know",
                hint="it was written by a newer pipesched; upgrade pipesched",
            ) from error
    command.upgrade(config, "head")


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
