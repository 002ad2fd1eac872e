"""Backups and upgrades with a real daemon: ``pipesched backup`` copies the store while a 1 s
schedule fires, and the daemon misses no fire; a store written by the previous pipesched (the
real code of that release, run from git) is migrated at start with every run kept, and the
copy left beside it takes the previous pipesched back; a daemon refuses a store that a newer
pipesched migrated, and leaves it as it was."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tarfile
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from scheduler import __version__
from scheduler.store.backup import pre_migration_backups, read_copy
from scheduler.store.engine import make_engine, sqlite_path
from scheduler.store.migrate import HEAD_REVISION
from scheduler.store.records import FireOutcome
from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess
from tests.projects import REPO, Project, make_project

pytestmark = pytest.mark.slow

PREVIOUS_REVISION = "0011"
TICK = "steps:\n  s: {type: python_script, script: s.py, allow_reuse: false}\n"
BALLAST_MB = 40  # the store made this big, so each copy takes a while


def tick_project(root: Path, **settings: object) -> Project:
    project = make_project(root, shutdown_grace="1s", **settings)
    project.pipeline("tick", TICK, {"s.py": "print('tick')\n"})
    return project


def database_of(project: Project) -> Path:
    path = sqlite_path(make_url(project.config().database_url))
    assert path is not None
    return path


def integrity(path: Path) -> str:
    connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return connection.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        connection.close()


def run_ids_in(path: Path) -> set[str]:
    connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return {row[0] for row in connection.execute("SELECT id FROM runs")}
    finally:
        connection.close()


def test_a_backup_while_a_1s_schedule_fires_is_whole_and_no_fire_is_missed(
    tmp_path: Path,
) -> None:
    project = tick_project(tmp_path / "p")
    project.schedules("schedules:\n  - {name: often, pipeline: tick, interval: 1s}\n")
    project.store().close()
    with sqlite3.connect(database_of(project)) as filler:
        filler.execute("CREATE TABLE test_ballast (data BLOB)")
        filler.executemany(
            "INSERT INTO test_ballast VALUES (?)", [(os.urandom(4096),)] * (BALLAST_MB * 256)
        )
    daemon = DaemonProcess(project)
    try:
        daemon.start()
        with project.store() as store:
            wait_until(lambda: store.count_fires("often") >= 3, timeout=30)
        reports = []
        started_at = datetime.now(UTC)
        for index in range(4):
            made = project.cli("backup", str(tmp_path / f"copy-{index}.db"), "--json")
            assert made.returncode == 0, made.stderr
            reports.append(json.loads(made.stdout))
        finished_at = datetime.now(UTC)

        with project.store() as store:

            def fires_past_the_backups() -> list:
                fires = [f for f in store.list_fires("often", limit=0) if f.nominal_time]
                latest = max(f.nominal_time for f in fires)
                return fires if latest > finished_at + timedelta(seconds=2) else []

            fires = sorted(
                wait_until(fires_past_the_backups, timeout=30), key=lambda f: f.nominal_time
            )
            all_runs = {run.id for run in store.list_runs(limit=0)}
        times = [f.nominal_time for f in fires]
        gaps = {b - a for a, b in itertools.pairwise(times)}
        assert gaps == {timedelta(seconds=1)}, [(str(f.nominal_time), f.outcome) for f in fires]
        left_out = [f for f in fires if f.outcome in (FireOutcome.MISSED, FireOutcome.SKIPPED)]
        assert left_out == []
        for report in reports:
            copy = Path(report["path"])
            assert integrity(copy) == "ok"
            assert report["bytes"] >= BALLAST_MB * 1024 * 1024
            copied = run_ids_in(copy)
            assert len(copied) == report["runs"] >= 1
            assert copied <= all_runs
        assert [r["runs"] for r in reports] == sorted(r["runs"] for r in reports)
        assert daemon.stop() == 0
        seconds = [r["seconds"] for r in reports]

        def latest_claim(during: bool) -> float:
            late = [
                (f.created_at - f.nominal_time).total_seconds()
                for f in fires
                if f.created_at and (started_at <= f.nominal_time <= finished_at) == during
            ]
            return max(late, default=0.0)

        print(
            f"{len(reports)} backups of {reports[0]['bytes'] / 2**20:.0f} MiB while a 1 s "
            f"schedule fired: median {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s; "
            f"{len(times)} fire times, none missed; fires claimed at most "
            f"{latest_claim(True) * 1000:.0f} ms after their time during the backups, "
            f"{latest_claim(False) * 1000:.0f} ms outside them"
        )
    finally:
        daemon.close()


def previous_release(into: Path) -> Path:
    """The ``scheduler`` package as it was at the last commit of schema ``PREVIOUS_REVISION``,
    unpacked into ``into``: the pipesched an operator upgrades from."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("the previous release is taken from git history")
    changed = subprocess.run(
        ["git", "-C", str(REPO), "log", "-1", "--format=%H",
         f"-G^HEAD_REVISION = \"{PREVIOUS_REVISION}\"", "--", "scheduler/store/migrate.py"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.strip()  # fmt: skip
    assert changed, "no commit left schema " + PREVIOUS_REVISION
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", f"{changed}^", "scheduler"],
        capture_output=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def with_release(project: Project, release: Path, *args: str) -> subprocess.CompletedProcess:
    """``pipesched ARGS`` of ``release`` on ``project``."""
    env = {**os.environ, "PYTHONPATH": str(release), "PIPESCHED_CONFIG": str(project.config_path)}
    return subprocess.run(
        [sys.executable, "-m", "scheduler.cli", *args],
        capture_output=True, text=True, timeout=120, env=env, cwd=project.root,
    )  # fmt: skip


def test_upgrading_from_the_previous_release_keeps_every_run_and_its_copy_goes_back(
    tmp_path: Path, daemons
) -> None:
    release = previous_release(tmp_path / "previous")
    project = tick_project(tmp_path / "p")
    old_ids = []
    for _ in range(2):
        ran = with_release(project, release, "run", "tick", "--json")
        assert ran.returncode == 0, ran.stderr
        old_ids.append(json.loads(ran.stdout)["id"])
    database = database_of(project)
    assert read_copy(database) == (PREVIOUS_REVISION, 2)

    daemon = daemons(project).start()
    (migrating,) = daemon.events("store_migrating")
    assert (migrating["from_revision"], migrating["to_revision"]) == (
        PREVIOUS_REVISION,
        HEAD_REVISION,
    )
    copy = Path(migrating["backup"])
    assert pre_migration_backups(database) == [copy]
    assert read_copy(copy) == (PREVIOUS_REVISION, 2)
    listed = project.cli("runs", "--json")
    assert listed.returncode == 0, listed.stderr
    runs = {run["id"]: run["status"] for run in json.loads(listed.stdout)}
    assert runs == dict.fromkeys(old_ids, "completed")
    shown = project.cli("show", old_ids[0])
    assert shown.returncode == 0 and old_ids[0] in shown.stdout
    assert daemon.stop() == 0

    # Going back, as the README says: stop, copy the copy over the database, drop the WAL.
    shutil.copyfile(copy, database)
    for suffix in ("-wal", "-shm"):
        database.with_name(database.name + suffix).unlink(missing_ok=True)
    listed = with_release(project, release, "runs", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {run["id"] for run in json.loads(listed.stdout)} == set(old_ids)


def test_a_daemon_refuses_a_store_a_newer_pipesched_migrated_and_leaves_it_alone(
    tmp_path: Path, daemons
) -> None:
    project = tick_project(tmp_path / "p")
    database = database_of(project)
    project.store().close()
    newer = f"{int(HEAD_REVISION) + 1:04d}"
    engine = make_engine(project.config().database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": newer})
            conn.execute(text("UPDATE store_info SET value = '9.9.0' WHERE key = 'migrated_by'"))
    finally:
        engine.dispose()
    before = hashlib.sha256(database.read_bytes()).hexdigest()

    daemon = daemons(project).start(wait_ready=False)
    assert daemon.wait_exit(timeout=60) == 1
    (refused,) = daemon.events("schema_too_new")
    assert refused["level"] == "error"
    assert refused["error"] == (
        f"the store is at schema revision '{newer}', newer than this pipesched "
        f"({__version__}, schema {HEAD_REVISION}) knows; pipesched 9.9.0 migrated it"
    )
    assert refused["hint"].startswith(
        "it was written by a newer pipesched: install pipesched 9.9.0 or later"
    )
    assert "READY=1" not in daemon.poll_messages()
    assert hashlib.sha256(database.read_bytes()).hexdigest() == before
    assert read_copy(database)[0] == newer
