"""The PostgreSQL half of "one daemon per store": a session-level advisory lock held on a
dedicated connection. It vanishes with the process (the server ends the session), so a restart
after ``kill -9`` is never refused. The holder is named through ``application_name``.

It also vanishes with the connection (a server restart, a proxy cut, ``pg_terminate_backend``):
the daemon asks every second whether the server still grants it (``lock_granted``) and takes it
again when it does not.

The connection is the lock's own (``lock_engine``): not pooled, so closing it ends the session
and lets the lock go at once, in autocommit, so it sits idle (never "idle in transaction")
between checks, and with libpq timeouts, so a check on a cut network fails within seconds
instead of waiting on the kernel's retransmissions for many minutes.
"""

from __future__ import annotations

import contextlib
import zlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

#: Distinct from the migration lock's key (crc32 of "pipesched:migrate").
DAEMON_LOCK_KEY = zlib.crc32(b"pipesched:daemon")

CONNECT_TIMEOUT_SECONDS = 5
# Data sent but not acknowledged for this long closes the connection (libpq's
# tcp_user_timeout): a check on a cut network fails instead of hanging.
UNACKNOWLEDGED_MS = 10_000
# application_name is cut to this many bytes by the server.
NAME_LENGTH = 63

# The lock as pg_locks shows it: an advisory lock belongs to one database (pg_locks lists those
# of every database of the server), and a single bigint key below 2**32 is classid 0, objid the
# key, objsubid 1.
_THE_LOCK = (
    "l.locktype = 'advisory' AND l.classid = 0 AND l.objid = :key AND l.objsubid = 1 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
_HOLDERS = (
    "SELECT a.pid, a.application_name, a.client_addr, a.backend_start FROM pg_locks l "
    f"JOIN pg_stat_activity a ON a.pid = l.pid WHERE {_THE_LOCK} AND l.granted"
)
_GRANTED_TO_ME = (
    f"SELECT count(*) FROM pg_locks l WHERE {_THE_LOCK} AND l.granted AND l.pid = pg_backend_pid()"
)


@dataclass(frozen=True)
class LockHolder:
    """The session that holds the daemon lock, as the server describes it."""

    pid: int
    application_name: str
    client_addr: str | None
    backend_start: datetime | None

    def describe(self) -> str:
        where = self.client_addr or "local socket"
        return f"{self.application_name or 'unknown'} (connected from {where} since {self.backend_start})"


def lock_engine(url: URL) -> Engine:
    """An engine of the lock's own for the database at ``url`` (see the module docstring)."""
    return create_engine(
        url,
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
        connect_args={
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "tcp_user_timeout": UNACKNOWLEDGED_MS,
        },
    )


def session_name(holder: str) -> str:
    """``holder`` as the server keeps it in ``application_name``."""
    return holder.encode()[:NAME_LENGTH].decode(errors="ignore")


def try_advisory_lock(engine: Engine, holder: str) -> tuple[Connection | None, LockHolder | None]:
    """(the connection that holds the lock, None) or (None, the session that holds it); (None,
    None) when it was held a moment ago but by nobody once we looked.

    A holder with our own name (``holder``) is an earlier session of ours that the server has
    not yet ended (its connection was cut without the server noticing): it is ended here, so
    the next try can succeed instead of waiting for the server's keepalive (hours by default).
    """
    name = session_name(holder)
    conn = engine.connect()
    try:
        conn.execute(text("SELECT set_config('application_name', :name, false)"), {"name": name})
        got = conn.execute(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": DAEMON_LOCK_KEY}
        ).scalar()
        conn.commit()
        if got:
            return conn, None
        row = conn.execute(text(_HOLDERS), {"key": DAEMON_LOCK_KEY}).first()
        other = None if row is None else LockHolder(row[0], row[1] or "", row[2], row[3])
        if other is not None and other.application_name == name:
            with contextlib.suppress(DBAPIError):  # not allowed to: wait for the server instead
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": other.pid})
        conn.close()
        return None, other
    except BaseException:
        conn.close()
        raise


def lock_granted(conn: Connection) -> bool:
    """Whether the server still grants the daemon lock to the session of ``conn``: one round
    trip, which fails (``DBAPIError``) when the connection is gone."""
    count = conn.execute(text(_GRANTED_TO_ME), {"key": DAEMON_LOCK_KEY}).scalar()
    conn.commit()
    return bool(count)


def end_lock_session(engine: Engine, pid: int, name: str) -> bool:
    """End the server session ``pid`` if it is still the one named ``name`` (a standby ending
    a lapsed leader's session: the pid may belong to someone else by now). Whether it ended."""
    with engine.connect() as conn:
        ended = conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE pid = :pid AND application_name = :name"
            ),
            {"pid": pid, "name": name},
        ).scalar()
        conn.commit()
    return bool(ended)
