"""On PostgreSQL the daemon's lock is a session advisory lock, which dies with its connection. A
real daemon whose lock connection is killed (``pg_terminate_backend``) takes the lock again and
goes on firing; if another session took it first, the daemon names the holder, stops firing
and exits 1. Meanwhile its store is fenced: writes are refused, reads go on."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from scheduler.store import Store
from scheduler.store.daemon_lock import DAEMON_LOCK_KEY
from scheduler.store.errors import StoreUnavailable
from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess, daemon_request
from tests.projects import Project, make_project

ON_POSTGRESQL = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
OTHER_HOLDER = "pipesched test: another holder"


@pytest.fixture
def project(tmp_path: Path, database_url: str) -> Project:
    project = make_project(tmp_path, database_url=database_url, shutdown_grace="1s")
    project.pipeline(
        "tick",
        "steps:\n  s: {type: python_script, script: s.py, allow_reuse: false}\n",
        {"s.py": "pass\n"},
    )
    project.schedules("schedules:\n  - {name: often, pipeline: tick, interval: 1s}\n")
    return project


@pytest.fixture
def database(database_url: str) -> str:
    """The name of the test's own database (the server's other tests hold their own daemon
    locks, which pg_locks lists too)."""
    return make_url(database_url).database or ""


def lock_sessions(admin: Engine, database: str) -> list[tuple[int, str, bool]]:
    """(pid, application_name, granted) of each session holding or awaiting the daemon lock of
    ``database``."""
    with admin.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT l.pid, a.application_name, l.granted FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
                "AND l.classid = 0 AND l.objid = :key AND l.objsubid = 1 "
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = :db) "
                "ORDER BY l.granted DESC"
            ),
            {"key": DAEMON_LOCK_KEY, "db": database},
        ).all()
    return [(row[0], row[1], row[2]) for row in rows]


def granted_to(admin: Engine, database: str) -> tuple[int, str] | None:
    granted = [(pid, name) for pid, name, ok in lock_sessions(admin, database) if ok]
    return granted[0] if granted else None


def terminate(admin: Engine, pid: int) -> None:
    with admin.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()


def fire_times(project: Project) -> list[datetime]:
    """The nominal times of the schedule's fire records."""
    with project.store() as store:
        return [f.nominal_time for f in store.list_fires("often", limit=0) if f.nominal_time]


def logged_at(daemon: DaemonProcess, event: str) -> datetime:
    (record,) = daemon.events(event)
    return datetime.fromisoformat(record["timestamp"])


def event_order(daemon: DaemonProcess) -> list[str]:
    return [line.get("event", "") for line in map(_json, daemon.log().splitlines()) if line]


def _json(line: str) -> dict:
    try:
        value = json.loads(line)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


@ON_POSTGRESQL
def test_a_killed_lock_connection_is_replaced_and_the_daemon_keeps_firing(
    project: Project, postgres_admin: Engine, database: str, daemons
):
    daemon = daemons(project).start()
    wait_until(lambda: fire_times(project), timeout=20)
    first = granted_to(postgres_admin, database)
    assert first is not None
    first_pid, name = first
    assert name.startswith("pipesched daemon ") and f"pid {daemon.proc.pid} " in name

    terminate(postgres_admin, first_pid)

    again = wait_until(
        lambda: (
            (held := granted_to(postgres_admin, database)) is not None
            and held[0] != first_pid
            and held
        ),
        timeout=20,
        message="the daemon took its lock again on a new session",
    )
    assert again[1] == name  # the same daemon's name on the new session
    wait_until(lambda: daemon.events("daemon_lock_retaken"), timeout=10)
    (lost,) = daemon.events("daemon_lock_connection_lost")
    assert "terminating connection due to administrator command" in lost["reason"]
    retaken_at = logged_at(daemon, "daemon_lock_retaken")
    wait_until(
        lambda: [t for t in fire_times(project) if t > retaken_at],
        timeout=20,
        message="a fire recorded after the lock was taken again",
    )
    wait_until(lambda: daemon_request(project, "GET", "/healthz")[0] == 200, timeout=20)
    assert daemon.proc.poll() is None
    assert not daemon.events("daemon_lock_lost")
    assert daemon.stop() == 0


@ON_POSTGRESQL
def test_a_lock_taken_by_another_session_stops_the_daemon_with_status_1(
    project: Project, postgres_admin: Engine, database: str, database_url: str, daemons
):
    daemon = daemons(project).start()
    wait_until(lambda: fire_times(project), timeout=20)
    held = granted_to(postgres_admin, database)
    assert held is not None
    holder_engine = create_engine(database_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    holder = holder_engine.connect()
    try:
        holder.execute(
            text("SELECT set_config('application_name', :n, false)"), {"n": OTHER_HOLDER}
        )
        holder_pid = holder.execute(text("SELECT pg_backend_pid()")).scalar()
        # Queued behind the daemon's session, the other holder is granted the lock the moment
        # that session ends: the daemon cannot take it back first.
        waiting = threading.Thread(target=_take_lock_waiting, args=(holder,))
        waiting.start()
        wait_until(
            lambda: (holder_pid, OTHER_HOLDER, False) in lock_sessions(postgres_admin, database),
            timeout=10,
            message="the other session waits for the lock",
        )
        terminate(postgres_admin, held[0])
        waiting.join(timeout=20)
        assert granted_to(postgres_admin, database) == (holder_pid, OTHER_HOLDER)

        assert daemon.wait_exit(timeout=60) == 1
        (lost,) = daemon.events("daemon_lock_lost")
        assert OTHER_HOLDER in lost["holder"]
        assert "another pipesched daemon holds this PostgreSQL database" in lost["error"]
        # Nothing was written from the moment the daemon saw its lock gone.
        noticed_at = logged_at(daemon, "daemon_lock_connection_lost")
        with project.store() as store:
            fires = store.list_fires("often", limit=0)
            runs = store.list_runs(limit=0)
        assert fires and all(f.created_at and f.created_at < noticed_at for f in fires)
        assert runs and all(r.created_at < noticed_at for r in runs)
        order = event_order(daemon)
        assert "schedule_fired" not in order[order.index("daemon_lock_connection_lost") :]
        assert granted_to(postgres_admin, database) == (holder_pid, OTHER_HOLDER)
    finally:
        holder.close()
        holder_engine.dispose()


@ON_POSTGRESQL
def test_writes_stay_fenced_while_the_lock_cannot_be_taken_again(
    project: Project, postgres_admin: Engine, database: str, daemons
):
    """New connections refused (as while a server restarts): the daemon keeps trying, /healthz
    says why, and nothing is written until the lock is its own again."""
    daemon = daemons(project).start()
    wait_until(lambda: fire_times(project), timeout=20)
    held = granted_to(postgres_admin, database)
    assert held is not None
    try:
        with postgres_admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
        terminate(postgres_admin, held[0])
        _, body = wait_until(
            lambda: (answer := daemon_request(project, "GET", "/healthz"))[0] == 503 and answer,
            timeout=20,
        )
        assert body["reason"].startswith("daemon lock lost: terminating connection")
        wait_until(lambda: len(daemon.events("daemon_lock_retake_failed")) >= 3, timeout=20)
        assert (
            "not currently accepting connections"
            in daemon.events("daemon_lock_retake_failed")[0]["error"]
        )
        assert granted_to(postgres_admin, database) is None
    finally:
        with postgres_admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))

    wait_until(lambda: daemon.events("daemon_lock_retaken"), timeout=30)
    noticed_at = logged_at(daemon, "daemon_lock_connection_lost")
    retaken_at = logged_at(daemon, "daemon_lock_retaken")
    wait_until(lambda: daemon_request(project, "GET", "/healthz")[0] == 200, timeout=20)
    wait_until(lambda: [t for t in fire_times(project) if t > retaken_at], timeout=20)
    with project.store() as store:
        written = [f.created_at for f in store.list_fires("often", limit=0) if f.created_at]
    assert not [t for t in written if noticed_at <= t <= retaken_at]
    assert daemon.proc.poll() is None
    assert daemon.stop() == 0


def _take_lock_waiting(conn: Connection) -> None:
    conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": DAEMON_LOCK_KEY})


def test_a_fenced_store_refuses_writes_and_serves_reads(store: Store):
    before = store.create_run(
        pipeline="p", content_hash="h", experiment="p", parameters={}, trigger="manual", steps=[]
    )
    reason = "daemon lock lost: server closed the connection unexpectedly"

    store.fence(reason)
    with pytest.raises(StoreUnavailable, match=reason):
        store.create_run(
            pipeline="p",
            content_hash="h",
            experiment="p",
            parameters={},
            trigger="manual",
            steps=[],
        )
    with pytest.raises(StoreUnavailable, match=reason):
        store.set_override("daily", False)
    assert [r.id for r in store.list_runs(limit=0)] == [before.id]
    assert store.get_run(before.id).status == "queued"
    assert store.health.unwritable == reason
    # The database would take a write, but the probe reports the fence.
    assert store.probe_write() == reason
    store.health.succeeded()
    with pytest.raises(StoreUnavailable):
        store.claim_fire("daily", before.created_at)
    assert store.health.unwritable == reason  # a refused write marks the store

    store.unfence()
    assert store.probe_write() is None and store.health.unwritable is None
    assert store.claim_fire("daily", before.created_at)
    assert len(store.list_runs(limit=0)) == 1
