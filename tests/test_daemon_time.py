"""Downtime, sleep, clock jumps and crashes around fires, on a real daemon with a test clock
(kill -9 after a claim or inside a write, SIGSTOP, days of downtime, a jumping wall clock). Time
is shifted, never waited for."""

from __future__ import annotations

import signal
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.daemon_harness import set_clock
from tests.projects import Project, make_project

HOUR = 3600


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = make_project(tmp_path, shutdown_grace="1s")
    project.pipeline(
        "tick",
        "steps:\n  s: {type: python_script, script: s.py, allow_reuse: false}\n",
        {"s.py": "print('tick')\n"},
    )
    return project


@pytest.fixture
def clock(tmp_path: Path) -> Path:
    path = tmp_path / "clock"
    set_clock(path, 0)
    return path


def fires(project: Project, name: str):
    with project.store() as store:
        return sorted(store.list_fires(name, limit=0), key=lambda f: f.nominal_time)


def runs(project: Project):
    with project.store() as store:
        return store.list_runs(limit=0)


def settled(project: Project):
    return [r for r in runs(project) if r.status in ("completed", "failed", "canceled")]


@pytest.mark.parametrize(
    ("rule", "started", "missed"), [("latest", 1, 2), ("all", 3, 0), ("none", 0, 3)]
)
@pytest.mark.slow
def test_down_three_hours_under_an_hourly_cron(project, clock, daemons, rule, started, missed):
    project.schedules(f"""
        schedules:
          - {{name: hourly, pipeline: tick, cron: "0 * * * *", catchup: {rule}, catchup_limit: 5}}
    """)
    daemons(project, clock_file=clock).start().stop()  # registers the schedule now
    set_clock(clock, 3 * HOUR)
    daemon = daemons(project, clock_file=clock).start()
    wait_until(lambda: len(settled(project)) == started, timeout=20)
    records = fires(project, "hourly")
    assert len(records) == 3
    assert Counter(f.outcome for f in records) == Counter(
        {k: v for k, v in {"started": started, "missed": missed}.items() if v}
    )
    assert all(f.reason == "catch-up rule" for f in records if f.outcome == "missed")
    if rule == "latest":
        assert records[-1].outcome == "started"  # the newest one runs
    if rule == "all":
        by_run = {r.id: r for r in runs(project)}
        times = [by_run[f.run_id].created_at for f in records]
        assert times == sorted(times)  # in order
    daemon.stop()


@pytest.mark.slow
def test_down_two_days_under_a_minutely_cron_is_ready_at_once_with_one_run(project, clock, daemons):
    project.schedules('schedules:\n  - {name: minutely, pipeline: tick, cron: "* * * * *"}\n')
    daemons(project, clock_file=clock).start().stop()  # registers the schedule now
    set_clock(clock, 2 * 24 * HOUR)
    # READY=1 within the harness's deadline: the 2,879 missed minutes are recorded, never run
    # (how soon belongs to the benchmarks, not to a test on a loaded machine).
    daemon = daemons(project, clock_file=clock).start()
    records = fires(project, "minutely")
    assert Counter(f.outcome for f in records)["started"] <= 2  # the catch-up, maybe a fresh minute
    (warning,) = daemon.events("fires_missed")
    assert warning["count"] >= 2879
    daemon.stop()


@pytest.mark.slow
def test_kill_9_after_the_fire_is_claimed_gives_exactly_one_recovered_run(project, daemons):
    project.schedules(
        "schedules:\n  - {name: tick, pipeline: tick, interval: 1s, concurrency: allow}\n"
    )
    crashed = daemons(project, env={"PIPESCHED_TEST_CRASHPOINT": "fire_claimed"})
    crashed.start(wait_ready=False)  # under load the first fire may come before READY
    crashed.wait_exit(timeout=20)
    (claimed,) = fires(project, "tick")
    assert claimed.outcome == "claimed" and not runs(project)
    daemon = daemons(project).start()
    wait_until(lambda: fires(project, "tick")[0].outcome == "started", timeout=10)
    daemon.stop()
    first = fires(project, "tick")[0]
    assert first.nominal_time == claimed.nominal_time
    by_id = {r.id: r for r in runs(project)}
    assert by_id[first.run_id].recovered is True
    run_ids = [f.run_id for f in fires(project, "tick") if f.run_id]
    assert len(run_ids) == len(set(run_ids)) == len(by_id)  # one run per nominal time, no more


@pytest.mark.slow
def test_kill_9_inside_a_write_transaction_loses_nothing_committed(project, daemons):
    project.schedules("schedules:\n  - {name: tick, pipeline: tick, interval: 1s}\n")
    daemon = daemons(project).start()
    wait_until(lambda: len(settled(project)) >= 2, timeout=15)
    daemon.stop()
    before = {r.id: r.status for r in settled(project)}
    crashing = daemons(project, env={"PIPESCHED_TEST_CRASHPOINT": "in_write_transaction@3"})
    crashing.start(wait_ready=False)
    crashing.wait_exit(timeout=20)
    db = project.state_dir / "pipesched.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    after = {r.id: r.status for r in runs(project)}
    assert {k: after.get(k) for k in before} == before
    daemons(project).start().stop()


def test_a_suspended_daemon_applies_the_catch_up_rule_on_waking(project, clock, daemons):
    project.schedules('schedules:\n  - {name: hourly, pipeline: tick, cron: "0 * * * *"}\n')
    daemon = daemons(project, clock_file=clock).start()
    daemon.signal(signal.SIGSTOP)
    set_clock(clock, 8 * HOUR)
    daemon.signal(signal.SIGCONT)
    wait_until(lambda: daemon.events("fires_missed"), timeout=10)
    wait_until(lambda: len(settled(project)) == 1, timeout=10)
    outcomes = Counter(f.outcome for f in fires(project, "hourly"))
    assert outcomes == Counter({"missed": 7, "started": 1})
    daemon.stop()


def test_clock_jumps_forward_then_back_apply_the_rule_once_and_repeat_nothing(
    project, clock, daemons
):
    project.schedules('schedules:\n  - {name: hourly, pipeline: tick, cron: "0 * * * *"}\n')
    daemon = daemons(project, clock_file=clock).start()
    set_clock(clock, 2 * HOUR)
    wait_until(lambda: len(settled(project)) == 1, timeout=10)
    assert Counter(f.outcome for f in fires(project, "hourly")) == Counter(
        {"missed": 1, "started": 1}
    )
    set_clock(clock, 1 * HOUR)
    wait_until(lambda: len(daemon.events("clock_jumped")) >= 2, timeout=10)
    set_clock(clock, 2 * HOUR + 5)  # back to where it was: the same nominal times come due
    wait_until(lambda: len(daemon.events("clock_jumped")) >= 3, timeout=10)
    records = fires(project, "hourly")
    assert len(records) == 2 and len(runs(project)) == 1
    daemon.stop()
