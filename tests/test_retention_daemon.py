"""Retention with a real daemon: its daily prune on its own clock, ``pipesched prune`` beside
it, a pruned dropped file that is not run again, and the state's bytes on ``/metrics``."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from scheduler.services.daemon_http import socket_path
from scheduler.store import Store
from tests.conftest import wait_until
from tests.daemon_harness import UnixHTTPConnection, set_clock
from tests.file_drops_harness import on_change
from tests.projects import Project, make_project
from tests.retention_world import ManualClock

pytestmark = pytest.mark.slow
STEPS = [("s", "s", "command")]


def seed_finished_runs(project: Project, created: datetime, count: int) -> list[str]:
    """Finished runs recorded a second apart from ``created`` on, each with a log folder."""
    ids = []
    clock = ManualClock(created)
    with Store.open(project.config().database_url, clock=clock) as store:
        for _ in range(count):
            clock.at += timedelta(seconds=1)
            run = store.create_run(
                pipeline="p",
                content_hash="h",
                experiment="p",
                parameters={},
                trigger="manual",
                steps=STEPS,
            )
            store.start_run(run.id)
            store.finish_run(run.id, "completed")
            log = project.state_dir / "runs" / run.id / "s" / "1.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text("x" * 5000)
            ids.append(run.id)
    return ids


def stored_run_ids(project: Project) -> set[str]:
    with project.store() as store:
        return {run.id for run in store.list_runs(limit=0)}


def scrape(project: Project) -> str:
    conn = UnixHTTPConnection(socket_path(project.config().state_dir))
    try:
        conn.request("GET", "/metrics")
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def test_the_daemon_prunes_minutes_after_start_then_once_a_day(tmp_path: Path, daemons):
    project = make_project(tmp_path / "p", retention={"runs": "1d", "keep_last": 1})
    now = datetime.now(UTC)
    old = seed_finished_runs(project, now - timedelta(days=3), 3)
    clock_file = tmp_path / "clock"
    set_clock(clock_file, 0)
    daemon = daemons(project, clock_file=clock_file).start()

    metrics = scrape(project)
    assert 'pipesched_state_bytes{kind="runs"}' in metrics, metrics
    assert 'pipesched_state_bytes{kind="database"}' in metrics, metrics

    set_clock(clock_file, 6 * 60)  # the first prune is due five minutes after start
    first = wait_until(lambda: daemon.events("prune_done"), timeout=20)[0]
    assert first["runs"] == 2 and first["bytes_freed"] > 0, first
    assert stored_run_ids(project) == {old[-1]}  # the newest run of its pipeline stays
    assert not (project.state_dir / "runs" / old[0]).exists()

    # Another old run, then a day later the next prune takes it (keep_last keeps the newest).
    newer = seed_finished_runs(project, now - timedelta(days=2), 1)
    set_clock(clock_file, 86400 + 7 * 60)
    second = wait_until(lambda: daemon.events("prune_done")[1:], timeout=20)[0]
    assert second["runs"] == 1, second
    assert stored_run_ids(project) == set(newer)
    daemon.stop()


def test_prune_beside_a_running_daemon_and_its_dry_run(tmp_path: Path, daemons):
    project = make_project(tmp_path / "p", retention={"runs": "1d", "keep_last": 1})
    old = seed_finished_runs(project, datetime.now(UTC) - timedelta(days=3), 4)
    daemon = daemons(project).start()

    dry = project.cli("prune", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("would delete 3 runs, freeing ")
    assert all(len(line) <= 80 for line in dry.stdout.splitlines())
    assert stored_run_ids(project) == set(old)
    planned = json.loads(project.cli("prune", "--dry-run", "--json").stdout)

    done = project.cli("prune", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["runs"] == planned["runs"] == 3
    assert report["runs_by_pipeline"] == planned["runs_by_pipeline"] == {"p": 3}
    assert report["bytes_by_kind"] == planned["bytes_by_kind"]
    assert stored_run_ids(project) == {old[-1]}
    again = project.cli("prune")
    assert again.stdout.startswith("deleted 0 runs"), again.stdout
    daemon.stop()


ARGS = ["${{parameters.input_path}}", "${{parameters.out}}"]
RECORD = "import sys, pathlib; pathlib.Path(sys.argv[2], pathlib.Path(sys.argv[1]).name).write_text('ran')"


def test_a_dropped_file_whose_run_was_pruned_is_not_run_again(tmp_path: Path, daemons):
    project = make_project(
        tmp_path / "p", shutdown_grace="1s", retention={"runs": "1h", "keep_last": 0}
    )
    received = tmp_path / "received"
    received.mkdir()
    project.pipeline(
        "drops",
        {
            "parameters": {"input_path": {"type": "path"}, "out": {"type": "str"}},
            "steps": {
                "s": {
                    "type": "command",
                    "command": [sys.executable, "-c", RECORD, *ARGS],
                    "allow_reuse": False,
                }
            },
        },
    )
    spec = on_change(settle="0.2s")
    spec["parameters"] = {"out": str(received)}
    project.schedules(yaml.safe_dump({"schedules": [spec]}))
    inbox = project.datastore / "inbox"
    inbox.mkdir(parents=True)

    daemon = daemons(project).start()
    wait_until(lambda: daemon.events("file_watch_started"), timeout=15)
    (inbox / "first.csv").write_text("1")
    wait_until(lambda: (received / "first.csv").exists(), timeout=20)
    wait_until(lambda: daemon.events("run_finished"), timeout=20)
    daemon.stop()

    # Two hours later the run is past the window: pruned, its file still in the inbox.
    pruned = project.cli(
        "prune", "--json", env={"PIPESCHED_TESTING": "1", "PIPESCHED_TEST_CLOCK": "7200,1"}
    )
    assert pruned.returncode == 0, pruned.stderr
    assert json.loads(pruned.stdout)["runs"] == 1
    assert stored_run_ids(project) == set()
    (received / "first.csv").unlink()

    # After a restart: a later file is handled (so the start-up rescan, which comes first, is
    # done) and the pruned one is not handled again.
    again = daemons(project).start()
    wait_until(lambda: again.events("file_watch_started"), timeout=15)
    (inbox / "later.csv").write_text("2")
    wait_until(lambda: (received / "later.csv").exists(), timeout=20)
    again.stop()
    assert not (received / "first.csv").exists()
    with project.store() as store:
        assert [run.trigger for run in store.list_runs(limit=0)] == ["file:inbox/later.csv"]
