"""``pipesched backup``: a consistent copy of the store, taken while the daemon goes on.

A SQLite store is copied from one snapshot to a private file (0600) that appears whole or not
at all, and is never written over unless asked. A PostgreSQL store is refused with the
``pg_dump`` command that copies it: pipesched does not run it (the dump must come from a
``pg_dump`` at least as new as the server, and sites tend to have their own routine).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from scheduler.core.errors import PipeschedError
from scheduler.store.backup import StorePlace, copy_database, pg_dump_command_for, utc_stamp
from scheduler.store.private_files import create_private_dir


def backup_store(database_url: str, path: str, *, force: bool = False) -> dict[str, Any]:
    """Copy the store at ``database_url`` to ``path`` (a folder, or a name ending in ``/``: a
    timestamped file inside it); what the copy holds: ``{path, database, bytes,
    schema_revision, runs, seconds}``."""
    place = StorePlace.of(database_url)
    if place.database is None:
        if place.postgresql:
            raise _use_pg_dump(database_url, path, place)
        raise PipeschedError("an in-memory store has nothing to back up")
    database = place.database
    if not database.is_file():
        raise PipeschedError(
            f"no store at {database}", hint="the daemon or the first command creates it"
        )
    target = _target(path, f"{database.stem}-{utc_stamp()}{database.suffix or '.db'}")
    if target.exists() and target.resolve() == database.resolve():
        raise PipeschedError(f"{target} is the store itself", hint="name another file")
    if target.exists() and not force:
        raise _exists(target)
    if not target.parent.is_dir():
        raise PipeschedError(f"no folder {target.parent}", hint="create it first")
    try:
        copy = copy_database(database, target, replace=force)
    except FileExistsError:
        raise _exists(target) from None
    except PermissionError as exc:
        raise PipeschedError(
            f"cannot copy {database} to {target}: {exc.strerror}",
            hint="run it as the user the daemon runs as, e.g. sudo -u pipesched pipesched backup",
        ) from None
    except (OSError, sqlite3.Error) as exc:
        raise PipeschedError(f"cannot copy {database} to {target}: {exc}") from None
    return {
        "path": str(copy.path),
        "database": str(database),
        "bytes": copy.size_bytes,
        "schema_revision": copy.schema_revision,
        "runs": copy.runs,
        "seconds": round(copy.seconds, 3),
    }


def _target(path: str, name_in_folder: str) -> Path:
    """``path``, or a file named ``name_in_folder`` inside it when it is a folder (one named
    with a trailing ``/`` is created, private)."""
    target = Path(path)
    if path.endswith("/") and not target.exists():
        create_private_dir(target)
    return target / name_in_folder if target.is_dir() else target


def _exists(target: Path) -> PipeschedError:
    return PipeschedError(
        f"{target} exists", hint="pass --force to replace it, or name another file or a folder"
    )


def _use_pg_dump(database_url: str, path: str, place: StorePlace) -> PipeschedError:
    target = Path(path)
    if path.endswith("/") or target.is_dir():
        target = target / f"pipesched-{utc_stamp()}.dump"
    password = " (with the password in $PGPASSWORD or ~/.pgpass)" if place.has_password else ""
    return PipeschedError(
        "pipesched backup copies SQLite stores; copy this PostgreSQL store with: "
        + pg_dump_command_for(database_url, target)
        + password
    )
