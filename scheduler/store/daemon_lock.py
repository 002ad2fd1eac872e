"""The PostgreSQL half of "one daemon per store": a session-level advisory lock held on a
dedicated connection. It vanishes with the process (the server ends the session), so a restart
after ``kill -9`` is never refused. The holder is named through ``application_name``."""

from __future__ import annotations

import zlib

from sqlalchemy import Connection, Engine, text

#: Distinct from the migration lock's key (crc32 of "pipesched:migrate").
DAEMON_LOCK_KEY = zlib.crc32(b"pipesched:daemon")


def try_advisory_lock(engine: Engine, holder: str) -> tuple[Connection | None, str | None]:
    """(the connection that holds the lock, None) or (None, who holds it)."""
    conn = engine.connect()
    try:
        conn.execute(
            text("SELECT set_config('application_name', :name, false)"), {"name": holder[:63]}
        )
        got = conn.execute(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": DAEMON_LOCK_KEY}
        ).scalar()
        conn.commit()
        if got:
            return conn, None
        other = conn.execute(
            text(
                "SELECT a.application_name, a.client_addr, a.backend_start FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
                "AND l.objid = :key AND l.granted"
            ),
            {"key": DAEMON_LOCK_KEY},
        ).first()
        conn.close()
        if other is None:
            return None, "another session"
        return (
            None,
            f"{other[0] or 'unknown'} (connected from {other[1] or 'local socket'} since {other[2]})",
        )
    except BaseException:
        conn.close()
        raise
