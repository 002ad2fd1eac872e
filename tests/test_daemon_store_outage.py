"""A real daemon whose SQLite store cannot be written for a while (another connection holds the
write lock past busy_timeout): /healthz answers 503 with the reason and STATUS= says so, and both
turn back once the lock is gone. And the WAL does not grow without bound: the daemon truncates it
after a burst of writes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from scheduler.services.daemon_http import DaemonClient, socket_path
from scheduler.store.engine import sqlite_path
from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess, daemon_request
from tests.projects import Project, make_project


def healthz(project: Project) -> tuple[int, dict]:
    status, body = daemon_request(project, "GET", "/healthz")
    return status, body


def database_file(project: Project) -> Path:
    path = sqlite_path(make_url(project.config().database_url))
    assert path is not None
    return path


def _project(tmp_path: Path) -> Project:
    project = make_project(tmp_path)
    project.pipeline(
        "tick", "steps:\n  s: {type: python_script, script: s.py}\n", {"s.py": "pass\n"}
    )
    project.schedules("schedules:\n  - {name: daily, pipeline: tick, cron: '0 3 * * *'}\n")
    return project


def test_a_locked_store_turns_healthz_503_and_status_says_so_until_the_lock_goes(tmp_path):
    project = _project(tmp_path)
    daemon = DaemonProcess(project)
    holder = None
    try:
        daemon.start()
        assert healthz(project)[0] == 200
        holder = sqlite3.connect(database_file(project), isolation_level=None, timeout=5)
        holder.execute("BEGIN IMMEDIATE")  # held far past the daemon's busy_timeout (5 s)

        _, body = wait_until(lambda: (answer := healthz(project))[0] == 503 and answer, timeout=30)
        assert body["status"] == "store_unwritable"
        assert body["reason"] == "database is locked"
        daemon.wait_message("STATUS=store unwritable: database is locked", timeout=10)
        # The CLI still finds its daemon, and reads why it is unhealthy.
        client = DaemonClient(socket_path(project.config().state_dir))
        assert client.available()
        assert client.health()["reason"] == "database is locked"

        holder.execute("ROLLBACK")
        holder.close()
        holder = None
        _, body = wait_until(lambda: (answer := healthz(project))[0] == 200 and answer, timeout=30)
        assert body["status"] == "ok" and "reason" not in body
        wait_until(lambda: daemon.poll_messages()[-1].startswith("STATUS=1 schedules"), timeout=10)
        assert len(daemon.events("store_unwritable")) == 1
        assert daemon.events("store_unwritable")[0]["reason"] == "database is locked"
        assert len(daemon.events("store_writable_again")) == 1
        assert daemon.stop() == 0
    finally:
        if holder is not None:
            holder.close()
        daemon.close()


def test_the_wal_is_truncated_after_a_burst_of_writes(tmp_path):
    project = _project(tmp_path)
    daemon = DaemonProcess(project)
    writer = None
    try:
        daemon.start()
        database = database_file(project)
        wal = database.with_name(database.name + "-wal")
        # Another connection writes 12 MB in one transaction (a table of its own): SQLite's own
        # checkpoints never shrink the WAL file.
        writer = sqlite3.connect(database, isolation_level=None, timeout=10)
        writer.execute("CREATE TABLE burst (data BLOB)")
        writer.execute("BEGIN IMMEDIATE")
        writer.executemany("INSERT INTO burst VALUES (?)", [(b"x" * 4096,)] * 3072)
        writer.execute("COMMIT")
        assert wal.stat().st_size > 10 * 1024 * 1024
        # The writer stays open, so the WAL is not removed by the last connection closing.
        wait_until(lambda: wal.stat().st_size == 0, timeout=30)
        assert writer.execute("SELECT count(*) FROM burst").fetchone() == (3072,)
        assert healthz(project)[0] == 200
        assert daemon.stop() == 0
    finally:
        if writer is not None:
            writer.close()
        daemon.close()


def test_a_write_that_fails_on_the_database_marks_the_store_until_a_probe_succeeds(tmp_path):
    project = _project(tmp_path)
    store = project.store()
    holder = sqlite3.connect(database_file(project), isolation_level=None, timeout=5)
    try:
        assert store.probe_write() is None and store.health.unwritable is None
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(OperationalError, match="database is locked"):
            store.set_override("daily", False)  # waits busy_timeout, then fails
        assert store.health.unwritable == "database is locked"
        holder.execute("ROLLBACK")
        assert store.probe_write() is None
        assert store.health.unwritable is None
        store.set_override("daily", False)  # the probe wrote nothing in its way
    finally:
        holder.close()
        store.close()
