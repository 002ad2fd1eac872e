"""Alerts from a real daemon reach a real command and a real HTTP receiver exactly once, even
when the receivers are down at first and the daemon restarts while the events wait: a failed
run, fires missed while the daemon was down, and a store that could not be written."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from scheduler.store.engine import sqlite_path
from tests.conftest import wait_until
from tests.daemon_harness import daemon_request, set_clock
from tests.notify_receivers import command_events, command_target, http_receiver
from tests.projects import Project, make_project

pytestmark = pytest.mark.slow

HOUR = 3600


def _project(tmp_path: Path, on: list[str], webhook: str) -> tuple[Project, Path]:
    argv, out = command_target(tmp_path)
    project = make_project(
        tmp_path / "p",
        notify=[
            {"on": on, "command": argv, "timeout": 10, "retries": 20},
            {"on": on, "webhook": webhook, "timeout": 5, "retries": 20},
        ],
    )
    project.pipeline(
        "breaks",
        "steps:\n  s: {type: python_script, script: s.py}\n",
        {"s.py": "import sys\nsys.exit(3)\n"},
    )
    project.pipeline(
        "tick", "steps:\n  s: {type: python_script, script: s.py}\n", {"s.py": "pass\n"}
    )
    return project, out


def _outbox(project: Project) -> list[dict]:
    with project.store() as store:
        return store.notifications()


def _set_down(out: Path, receiver, down: bool) -> None:
    receiver.down = down
    marker = out.with_name(out.name + ".down")
    if down:
        marker.write_text("")
    else:
        marker.unlink(missing_ok=True)


def _once_each(events: list[dict], kinds: set[str]) -> None:
    counts = Counter(event["id"] for event in events)
    assert set(counts.values()) == {1}, counts
    assert {event["event"] for event in events} == kinds


def test_a_failed_run_reaches_both_targets_once_across_a_restart(tmp_path, daemons):
    with http_receiver() as receiver:
        project, out = _project(tmp_path, ["failed"], receiver.url)
        _set_down(out, receiver, True)
        daemon = daemons(project).start()
        status, run = daemon_request(project, "POST", "/api/v1/pipelines/breaks/runs", {})
        assert status in (200, 201, 202), run
        wait_until(lambda: any(row["attempts"] >= 1 for row in _outbox(project)), timeout=60)
        assert daemon.stop() == 0
        assert command_events(out) == [] and receiver.events == []

        _set_down(out, receiver, False)
        daemon = daemons(project).start()
        wait_until(
            lambda: all(row["delivered_at"] for row in _outbox(project)) and _outbox(project),
            timeout=60,
        )
        assert daemon.stop() == 0
    for events in (command_events(out), receiver.events):
        _once_each(events, {"failed"})
        (event,) = events
        assert event["pipeline"] == "breaks" and event["status"] == "failed"
        assert event["run_id"] and event["url"].endswith("/runs/" + event["run_id"])
    assert command_events(out)[0]["id"] == receiver.events[0]["id"]


def test_fires_missed_while_the_daemon_was_down_reach_both_targets_once(tmp_path, daemons):
    clock = tmp_path / "clock"
    set_clock(clock, 0)
    with http_receiver() as receiver:
        project, out = _project(tmp_path, ["missed"], receiver.url)
        project.schedules(
            'schedules:\n  - {name: hourly, pipeline: tick, cron: "0 * * * *", catchup: none}\n'
        )
        daemons(project, clock_file=clock).start().stop()  # registers the schedule now
        _set_down(out, receiver, True)
        set_clock(clock, 3 * HOUR)  # down across three fire times
        daemon = daemons(project, clock_file=clock).start()
        wait_until(lambda: any(row["attempts"] >= 2 for row in _outbox(project)), timeout=60)
        assert daemon.stop() == 0

        _set_down(out, receiver, False)
        daemon = daemons(project, clock_file=clock).start()
        wait_until(
            lambda: all(row["delivered_at"] for row in _outbox(project)) and _outbox(project),
            timeout=60,
        )
        assert daemon.stop() == 0
    for events in (command_events(out), receiver.events):
        _once_each(events, {"missed"})
        (event,) = events
        assert event["schedule"] == "hourly" and event["pipeline"] == "tick"
        assert event["count"] == 3 and len(event["nominal_times"]) == 3
        assert event["nominal_time"] == event["nominal_times"][-1]


def test_a_store_outage_reaches_both_targets_once_across_a_restart(tmp_path, daemons):
    with http_receiver() as receiver:
        project, out = _project(tmp_path, ["store_unwritable", "recovered"], receiver.url)
        spool = project.state_dir / "notify-spool.jsonl"
        _set_down(out, receiver, True)
        daemon = daemons(project).start()
        holder = sqlite3.connect(_database_file(project), isolation_level=None, timeout=5)
        try:
            holder.execute("BEGIN IMMEDIATE")  # held past the daemon's busy_timeout
            wait_until(lambda: daemon.events("store_unwritable"), timeout=30)
            wait_until(spool.exists, timeout=10)
            assert spool.stat().st_mode & 0o777 == 0o600
            wait_until(lambda: daemon.events("notify_retry"), timeout=30)
            holder.execute("ROLLBACK")
        finally:
            holder.close()
        wait_until(lambda: not spool.exists(), timeout=30)
        wait_until(
            lambda: (
                {row["event"] for row in _outbox(project) if row["attempts"] >= 1}
                == {"store_unwritable", "recovered"}
            ),
            timeout=60,
        )
        assert daemon.stop() == 0
        assert command_events(out) == [] and receiver.events == []

        _set_down(out, receiver, False)
        daemon = daemons(project).start()
        wait_until(
            lambda: all(row["delivered_at"] for row in _outbox(project)) and _outbox(project),
            timeout=60,
        )
        assert daemon.stop() == 0
    for events in (command_events(out), receiver.events):
        _once_each(events, {"store_unwritable", "recovered"})
        unwritable = next(e for e in events if e["event"] == "store_unwritable")
        assert unwritable["reason"] == "database is locked"


def _database_file(project: Project) -> Path:
    path = sqlite_path(make_url(project.config().database_url))
    assert path is not None
    return path
