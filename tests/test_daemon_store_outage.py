"""A real daemon whose SQLite store cannot be written for a while (another connection holds the
write lock past busy_timeout): /healthz answers 503 with the reason and STATUS= says so, and both
turn back once the lock is gone. And the WAL does not grow without bound: the daemon truncates it
after a burst of writes."""

from __future__ import annotations

import itertools
import sqlite3
import time
from datetime import UTC, datetime, timedelta
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_store_locked_for_15_s_loses_no_fire_time_and_no_step_outcome(tmp_path):
    """Another connection holds the write lock for 15 s while a 1 s interval fires and a step
    exits 0: every nominal time gets its fire record once the lock goes (the catch-up rule
    decides which run), the step's run ends ``completed``, /healthz answers 503 meanwhile, and
    nothing is left to asyncio's "never retrieved"."""
    project = make_project(tmp_path)
    project.pipeline(
        "tick", "steps:\n  s: {type: python_script, script: s.py}\n", {"s.py": "pass\n"}
    )
    go = tmp_path / "go"
    project.pipeline(
        "waiter",
        "steps:\n  w: {type: python_script, script: w.py}\n",
        {
            "w.py": (
                "import os, time\n"
                f"while not os.path.exists({str(go)!r}):\n"
                "    time.sleep(0.05)\n"
                "print('done waiting')\n"
            )
        },
    )
    project.schedules(
        "schedules:\n"
        "  - {name: tick, pipeline: tick, interval: 1s}\n"
        "  - {name: waiter, pipeline: waiter, interval: 100d}\n"
    )
    daemon = DaemonProcess(project)
    holder = None
    store = None
    try:
        daemon.start()
        assert project.cli("schedule", "trigger", "waiter").returncode == 0
        store = project.store()
        waiting_run = wait_until(
            lambda: next((r for r in store.list_runs(limit=50) if r.pipeline == "waiter"), None),
            timeout=20,
        )
        wait_until(lambda: store.get_run(waiting_run.id).status == "running", timeout=20)
        wait_until(lambda: store.count_fires("tick") >= 2, timeout=20)

        holder = sqlite3.connect(database_file(project), isolation_level=None, timeout=5)
        holder.execute("BEGIN IMMEDIATE")
        locked_at = time.monotonic()
        go.touch()  # the step exits 0 while the store cannot be written
        _, body = wait_until(lambda: (answer := healthz(project))[0] == 503 and answer, timeout=20)
        assert body["reason"] == "database is locked"
        wait_until(lambda: time.monotonic() - locked_at >= 15, timeout=20, interval=0.5)
        holder.execute("ROLLBACK")
        holder.close()
        holder = None
        unlocked_at = datetime.now(UTC)

        def ended() -> str | None:
            status = store.get_run(waiting_run.id).status.value
            return status if status not in ("queued", "running") else None

        assert wait_until(ended, timeout=30) == "completed"
        detail = store.get_run_detail(waiting_run.id)
        assert [a.status for a in detail.latest_attempts().values()] == ["completed"]

        def covered_past_unlock() -> list:
            fires = [f for f in store.list_fires("tick", limit=0) if f.nominal_time]
            latest = max(f.nominal_time for f in fires)
            return fires if latest > unlocked_at + timedelta(seconds=2) else []

        fires = sorted(wait_until(covered_past_unlock, timeout=30), key=lambda f: f.nominal_time)
        times = [f.nominal_time for f in fires]
        assert len(set(times)) == len(times)  # no nominal time twice
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert set(gaps) == {timedelta(seconds=1)}, (
            "a nominal time has no fire record: "
            + str([(f.nominal_time.time().isoformat(), f.outcome.value) for f in fires])
            + daemon.log()[-6000:]
        )
        outcomes = {f.outcome.value for f in fires}
        assert "missed" in outcomes  # the outage's times met the catch-up rule (latest)
        assert {f.reason for f in fires if f.outcome.value == "missed"} == {"catch-up rule"}
        assert healthz(project)[0] == 200
        assert daemon.stop() == 0
        log = daemon.log()
        assert "never retrieved" not in log
        assert "Traceback" not in log
        assert daemon.events("store_outage_catch_up")
        deferred = daemon.events("fire_deferred")
        held = daemon.events("store_write_held")
        print(
            f"store locked 15 s: {len(times)} nominal times recorded, 0 gaps, 0 twice, "
            f"{len(deferred)} deferred and caught up, {len(held)} writes held then written, "
            f"step outcome {detail.run.status.value}"
        )
    finally:
        if holder is not None:
            holder.close()
        if store is not None:
            store.close()
        daemon.close()
