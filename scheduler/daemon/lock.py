"""One daemon per store: on SQLite an ``flock`` on ``<state_dir>/daemon.lock``, on
PostgreSQL a session advisory lock. Both die with their process, so a restart after ``kill -9``
is never refused; a second daemon exits 1 naming the holder (host, pid, start time).

The advisory lock also dies with its connection, which the daemon does not control: ``check``
asks whether the server still grants it, ``retake`` takes it again on a new connection
(``daemon/lock_watch.py`` does both every second). The flock cannot be lost.

Taking, checking and retaking the lock block (a file lock, a database round trip): callers on an
event loop hand them to a thread."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from scheduler.core.clock import iso
from scheduler.core.errors import PipeschedError
from scheduler.store.daemon_lock import (
    LockHolder,
    lock_engine,
    lock_granted,
    session_name,
    try_advisory_lock,
)
from scheduler.store.health import failure_reason


class DaemonAlreadyRunning(PipeschedError):
    """Another pipesched daemon is running on this store."""


@dataclass(frozen=True)
class Retake:
    """What one try to take the lock again found: ``taken``; or ``holder``, the description of
    another daemon that holds it now; or neither (held a moment ago by a session of ours the
    server had not yet ended, or by nobody once we looked): try again soon."""

    taken: bool
    holder: str | None = None


class DaemonLock:
    """Held for the daemon's life; ``release()`` on the way out (the kernel does it on a crash).
    On PostgreSQL also the engine and name the advisory lock is taken with, to take it again."""

    def __init__(
        self,
        file_handle: Any = None,
        connection: Connection | None = None,
        engine: Engine | None = None,
        name: str = "",
    ) -> None:
        self._file = file_handle
        self._connection = connection
        self._engine = engine
        self.name = name  # the application_name of the lock's session

    @property
    def on_database(self) -> bool:
        """Whether this lock is (also) a PostgreSQL advisory lock, which can be lost."""
        return self._engine is not None

    def check(self) -> str | None:
        """None while the server grants the lock to our session; otherwise why not (the
        driver's words), and the connection is dropped: ``retake`` opens a new one."""
        connection = self._connection
        if connection is None:
            return "no connection to the database"
        try:
            if lock_granted(connection):
                return None
            reason = "the server no longer grants it to the daemon's session"
        except DBAPIError as exc:
            reason = failure_reason(exc)
        except Exception as exc:  # what cannot prove the lock is held counts as its loss
            reason = f"{type(exc).__name__}: {exc}"
        self._close_connection()
        return reason

    def retake(self) -> Retake:
        """One try to take the advisory lock again on a new connection; raises ``DBAPIError``
        while the server cannot be reached."""
        assert self._engine is not None
        self._close_connection()
        connection, holder = try_advisory_lock(self._engine, self.name)
        if connection is not None:
            self._connection = connection
            return Retake(taken=True)
        if holder is None or holder.application_name == session_name(self.name):
            return Retake(taken=False)
        return Retake(taken=False, holder=holder.describe())

    def release(self) -> None:
        self._close_connection()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def _close_connection(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None


def holder_description(started_at: datetime) -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "started_at": iso(started_at)}


def acquire(state_dir: Path, store: Any, started_at: datetime) -> DaemonLock:
    """Take the lock for this state directory (always) and, on PostgreSQL, for the database."""
    me = holder_description(started_at)
    handle = take_file_lock(state_dir, me)
    if store.engine.dialect.name != "postgresql":
        return DaemonLock(handle)
    label = lock_label(me)
    engine = lock_engine(store.engine.url)
    try:
        taken = try_database_lock(handle, engine, label)
    except BaseException:
        engine.dispose()
        handle.close()
        raise
    if isinstance(taken, DaemonLock):
        return taken
    engine.dispose()
    handle.close()
    raise DaemonAlreadyRunning(
        "another pipesched daemon holds this PostgreSQL database: "
        + (taken.describe() if taken else "another session"),
        hint="one daemon per database; stop the other first (or run it with ha.mode standby)",
    )


def lock_label(me: dict[str, Any]) -> str:
    """The name of the lock's session: how ``pg_stat_activity`` and other daemons see us."""
    return f"pipesched daemon {me['host']} pid {me['pid']} {me['started_at']}"


def try_database_lock(handle: Any, engine: Engine, label: str) -> DaemonLock | LockHolder | None:
    """One try at the advisory lock: the whole lock when taken, else the session holding it
    (None when nobody held it by the time we looked: try again)."""
    connection, holder = try_advisory_lock(engine, label)
    if connection is not None:
        return DaemonLock(handle, connection, engine, label)
    return holder


def take_file_lock(state_dir: Path, me: dict[str, Any]) -> Any:
    """The flock on ``<state_dir>/daemon.lock``, with our description written into it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "daemon.lock"
    handle = open(path, "a+")  # noqa: SIM115 - held open for the daemon's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = _describe(handle.read())
        handle.close()
        raise DaemonAlreadyRunning(
            f"another pipesched daemon holds {path}: {holder}",
            hint="stop it first (systemctl stop pipesched), or use another state_dir",
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps(me) + "\n")
    handle.flush()
    return handle


def _describe(text: str) -> str:
    try:
        info = json.loads(text.strip().splitlines()[-1])
        return f"host {info['host']}, pid {info['pid']}, started {info['started_at']}"
    except (ValueError, IndexError, KeyError):
        return "holder unknown"
