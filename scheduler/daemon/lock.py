"""One daemon per store: on SQLite an ``flock`` on ``<state_dir>/daemon.lock``, on
PostgreSQL a session advisory lock. Both die with their process, so a restart after ``kill -9``
is never refused; a second daemon exits 1 naming the holder (host, pid, start time).

Taking the lock blocks (a file lock, a database round trip): callers on an event loop hand it to
a thread."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

from scheduler.core.clock import iso
from scheduler.core.errors import PipeschedError
from scheduler.store.daemon_lock import try_advisory_lock


class DaemonAlreadyRunning(PipeschedError):
    """Another pipesched daemon is running on this store."""


class DaemonLock:
    """Held for the daemon's life; ``release()`` on the way out (the kernel does it on a crash)."""

    def __init__(self, file_handle: Any = None, connection: Any = None) -> None:
        self._file = file_handle
        self._connection = connection

    def release(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def holder_description(started_at: datetime) -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "started_at": iso(started_at)}


def acquire(state_dir: Path, store: Any, started_at: datetime) -> DaemonLock:
    """Take the lock for this state directory (always) and, on PostgreSQL, for the database."""
    me = holder_description(started_at)
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
    connection = None
    if store.engine.dialect.name == "postgresql":
        label = f"pipesched daemon {me['host']} pid {me['pid']} {me['started_at']}"
        connection, db_holder = try_advisory_lock(store.engine, label)
        if connection is None:
            handle.close()
            raise DaemonAlreadyRunning(
                f"another pipesched daemon holds this PostgreSQL database: {db_holder}",
                hint="one daemon per database; stop the other first",
            )
    return DaemonLock(handle, connection)


def _describe(text: str) -> str:
    try:
        info = json.loads(text.strip().splitlines()[-1])
        return f"host {info['host']}, pid {info['pid']}, started {info['started_at']}"
    except (ValueError, IndexError, KeyError):
        return "holder unknown"
