"""A real daemon subprocess: fires, reloads (a bad file keeps the old set), stops (SIGTERM
mid-run), crashes (kill -9 around a step) and restarts, and the lock against a second daemon."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from scheduler.core.procinfo import is_alive
from tests.conftest import wait_until
from tests.projects import Project, make_project

TICK = "import time; print('tick', time.time())\n"
SLOW = """
import os, pathlib, sys, time
pathlib.Path(sys.argv[1], f"{os.getpid()}.pid").write_text("")
time.sleep(float(sys.argv[2]))
"""


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = make_project(tmp_path, shutdown_grace="1s")
    (tmp_path / "pids").mkdir()
    project.pipeline(
        "tick",
        "steps:\n  s: {type: python_script, script: s.py, allow_reuse: false}\n",
        {"s.py": TICK},
    )
    project.pipeline(
        "three",
        f"""
        steps:
          one: {{type: python_script, script: slow.py, arguments: ["{tmp_path / "pids"}", "0"], allow_reuse: false}}
          two: {{type: python_script, script: slow.py, arguments: ["{tmp_path / "pids"}", "600"], depends_on: [one], allow_reuse: false}}
          three: {{type: python_script, script: slow.py, arguments: ["{tmp_path / "pids"}", "0"], depends_on: [two], allow_reuse: false}}
        """,
        {"slow.py": SLOW},
    )
    return project


def runs_of(project: Project, **filters) -> list:
    with project.store() as store:
        return store.list_runs(limit=0, **filters)


def step_pids(project: Project) -> list[int]:
    return [int(p.stem) for p in (project.root / "pids").glob("*.pid")]


def test_interval_schedule_fires_and_sigterm_exits_zero(project: Project, daemons):
    project.schedules("schedules:\n  - {name: tick, pipeline: tick, interval: 1s}\n")
    daemon = daemons(project).start()
    wait_until(
        lambda: len([r for r in runs_of(project) if r.status == "completed"]) >= 2, timeout=15
    )
    assert daemon.stop() == 0
    runs = runs_of(project)
    assert {r.trigger for r in runs} == {"schedule:tick"}
    assert all(r.status in ("completed", "canceled") for r in runs)
    with project.store() as store:
        fires = store.list_fires("tick", limit=0)
    assert len({f.nominal_time for f in fires}) == len(fires)
    assert {f.run_id for f in fires if f.outcome == "started"} == {r.id for r in runs}


def test_sigterm_mid_run_cancels_it_after_the_grace_and_leaves_nothing_open(project, daemons):
    project.schedules("schedules:\n  - {name: slow, pipeline: three, interval: 1h}\n")
    daemon = daemons(project).start()
    trigger(project, "slow")
    wait_until(lambda: len(step_pids(project)) >= 2, timeout=20)  # step two is running
    started = time.monotonic()
    assert daemon.stop() == 0
    took = time.monotonic() - started
    (run,) = runs_of(project)
    assert run.status == "canceled" and run.status_reason == "shutdown"
    steps = {s["name"]: s for s in project_detail(project, run.id)["steps"]}
    assert steps["one"]["status"] == "completed"
    assert steps["two"]["status"] == "canceled"
    assert steps["three"]["status"] == "canceled"
    assert took >= 1.0, took  # shutdown_grace 1s first, then SIGTERM to the group
    wait_until(lambda: not any(is_alive(pid, None) for pid in step_pids(project)), timeout=5)
    assert not [r for r in runs_of(project) if r.status in ("queued", "running")]


def trigger(project: Project, schedule: str) -> None:
    result = project.cli("schedule", "trigger", schedule)
    assert result.returncode == 0, result.stderr


def project_detail(project: Project, run_id: str) -> dict:
    with project.store() as store:
        return store.get_run_detail(run_id).to_json()


def test_kill_9_during_step_two_of_three_closes_the_run_at_restart(project, daemons):
    project.schedules("schedules:\n  - {name: slow, pipeline: three, interval: 1h}\n")
    daemon = daemons(project).start()
    trigger(project, "slow")
    wait_until(lambda: len(step_pids(project)) >= 2, timeout=20)
    pid_of_two = max(
        step_pids(project), key=lambda p: (project.root / "pids" / f"{p}.pid").stat().st_mtime_ns
    )
    daemon.kill9()
    restarted = daemons(project).start()
    (run,) = runs_of(project)
    assert run.status == "failed" and run.status_reason == "daemon restart"
    steps = {s["name"]: s for s in project_detail(project, run.id)["steps"]}
    assert steps["one"]["status"] == "completed"
    assert steps["two"]["status"] == "failed" and steps["two"]["status_reason"] == "daemon restart"
    assert steps["three"]["status"] != "running"
    wait_until(lambda: not is_alive(pid_of_two, None), timeout=5)
    restarted.stop()
    assert len(runs_of(project)) == 1  # the restart did not run the same nominal time again


def test_kill_9_after_the_step_started_before_its_pid_was_recorded(project, daemons):
    project.schedules("schedules:\n  - {name: slow, pipeline: three, interval: 1h}\n")
    daemon = daemons(project, env={"PIPESCHED_TEST_CRASHPOINT": "step_spawned"}).start()
    project.cli("schedule", "trigger", "slow")  # the daemon dies while answering
    daemon.wait_exit(timeout=20)  # killed itself right after starting step one
    wait_until(lambda: step_pids(project), timeout=10)
    orphan = step_pids(project)[0]
    daemons(project).start()
    wait_until(lambda: runs_of(project)[0].status == "failed", timeout=5)
    (run,) = runs_of(project)
    assert run.status_reason == "daemon restart"
    wait_until(lambda: not is_alive(orphan, None), timeout=5)


def test_a_second_daemon_is_refused_naming_the_holder(project, daemons):
    first = daemons(project).start()
    second = subprocess.run(
        [sys.executable, "-m", "scheduler.cli", "-c", str(project.config_path), "daemon"],
        env={**os.environ, "PIPESCHED_ASSERT_OFF_LOOP": "1"},
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert second.returncode == 1
    assert f"pid {first.proc.pid}" in second.stderr and "another pipesched daemon" in second.stderr


def test_restart_right_after_kill_9_is_not_refused(project, daemons):
    daemons(project).start().kill9()
    assert daemons(project).start().stop() == 0


def test_sighup_adds_new_schedules_and_a_broken_file_keeps_the_old_set(project, daemons):
    project.schedules("schedules:\n  - {name: first, pipeline: tick, interval: 1s}\n")
    daemon = daemons(project).start()
    wait_until(lambda: runs_of(project, pipeline="tick"), timeout=10)
    project.schedules("""
        schedules:
          - {name: first, pipeline: tick, interval: 1s}
          - {name: second, pipeline: tick, interval: 1s}
    """)
    daemon.signal(signal.SIGHUP)
    wait_until(lambda: any(r.schedule == "second" for r in runs_of(project)), timeout=10)
    project.schedules("""
        schedules:
          - {name: first, pipeline: tick, interval: 1s}
          - {name: second, pipeline: tick, interval: 1s, timezone: Mars/Olympus_Mons}
    """)
    daemon.signal(signal.SIGHUP)
    wait_until(lambda: daemon.events("reload_refused"), timeout=10)
    assert "schedules.yaml:4:" in daemon.events("reload_refused")[0]["error"]
    before = Counter(r.schedule for r in runs_of(project))
    wait_until(
        lambda: Counter(r.schedule for r in runs_of(project))["second"] > before["second"],
        timeout=10,
    )  # the old set keeps firing both
    assert daemon.stop() == 0


def test_sighup_removes_a_schedule_and_keeps_unchanged_ones_without_double_fires(project, daemons):
    project.schedules("""
        schedules:
          - {name: keep, pipeline: tick, interval: 1s}
          - {name: drop, pipeline: tick, interval: 1s}
    """)
    daemon = daemons(project).start()
    wait_until(lambda: {"keep", "drop"} <= {r.schedule for r in runs_of(project)}, timeout=10)
    project.schedules("schedules:\n  - {name: keep, pipeline: tick, interval: 1s}\n")
    daemon.signal(signal.SIGHUP)
    wait_until(lambda: daemon.events("reload_done"), timeout=10)
    dropped = len(runs_of(project, pipeline="tick"))
    wait_until(lambda: len([r for r in runs_of(project) if r.schedule == "keep"]) >= 4, timeout=10)
    after = [r for r in runs_of(project) if r.schedule == "drop"]
    assert len(after) <= dropped  # nothing new for the removed schedule
    with project.store() as store:
        fires = store.list_fires("keep", limit=0)
    assert len(fires) == len({f.nominal_time for f in fires})
    daemon.stop()


def test_a_bad_schedule_at_start_is_reported_and_the_good_ones_serve(project, daemons):
    project.schedules("""
        schedules:
          - {name: good, pipeline: tick, interval: 1s}
          - {name: bad, pipeline: tick, cron: "61 * * * *"}
    """)
    daemon = daemons(project).start()
    assert any("schedules.yaml:4:39" in e["error"] for e in daemon.events("definition_invalid"))
    wait_until(lambda: runs_of(project), timeout=10)
    daemon.stop()


def test_cancel_through_the_daemon_stops_the_steps_within_seconds(project, daemons):
    project.schedules("schedules:\n  - {name: slow, pipeline: three, interval: 1h}\n")
    daemons(project).start()
    trigger(project, "slow")
    wait_until(lambda: len(step_pids(project)) >= 2, timeout=20)
    (run,) = runs_of(project)
    result = project.cli("cancel", run.id[:10])
    assert result.returncode == 0, result.stderr
    (run,) = runs_of(project)
    assert run.status == "canceled" and run.status_reason == "canceled by user"
    wait_until(lambda: not any(is_alive(pid, None) for pid in step_pids(project)), timeout=5)


def test_disable_and_enable_take_effect_at_once_and_outlive_a_restart(project, daemons):
    project.schedules("schedules:\n  - {name: tick, pipeline: tick, interval: 1s}\n")
    daemon = daemons(project).start()
    wait_until(lambda: runs_of(project), timeout=10)
    assert project.cli("schedule", "disable", "tick").returncode == 0

    def settled():  # a fire already in flight when disable landed has finished
        with project.store() as store:
            fires = store.list_fires("tick", limit=0)
        runs = runs_of(project)
        return all(f.outcome != "claimed" for f in fires) and all(
            r.status not in ("queued", "running") for r in runs
        )

    wait_until(settled, timeout=10)
    count = len(runs_of(project))
    with project.store() as store:
        fires_before = len(store.list_fires("tick", limit=0))
    daemon.stop()
    daemon = daemons(project).start()
    (entry,) = json.loads(project.cli("schedules", "--json").stdout)
    assert entry["enabled"] is False and entry["next_fire_times"] == []
    with project.store() as store:
        assert len(store.list_fires("tick", limit=0)) == fires_before  # nothing fired meanwhile
    assert len(runs_of(project)) == count
    assert project.cli("schedule", "enable", "tick").returncode == 0
    wait_until(lambda: len(runs_of(project)) > count, timeout=10)
    daemon.stop()


def test_a_yaml_syntax_error_on_reload_names_the_line_and_keeps_serving(project, daemons):
    project.schedules("schedules:\n  - {name: tick, pipeline: tick, interval: 1s}\n")
    daemon = daemons(project).start()
    wait_until(lambda: runs_of(project), timeout=10)
    project.schedules("schedules:\n  - {name: tick, pipeline: tick, interval: 1s\n  - [oops\n")
    daemon.signal(signal.SIGHUP)
    (refused, *_) = wait_until(lambda: daemon.events("reload_refused"), timeout=10)
    assert "schedules.yaml:" in refused["error"]
    count = len(runs_of(project))
    wait_until(lambda: len(runs_of(project)) > count + 1, timeout=10)
    daemon.stop()


def test_a_broken_pipeline_leaves_out_only_its_schedules(project, daemons):
    project.pipeline("broken", "steps:\n  s: {type: python_script, scirpt: s.py}\n", {"s.py": ""})
    project.schedules("""
        schedules:
          - {name: tick, pipeline: tick, interval: 1s}
          - {name: broken, pipeline: broken, interval: 1s}
    """)
    daemon = daemons(project).start()
    assert any(
        "pipeline.yaml:2:" in e["error"] and "scirpt" in e["error"]
        for e in daemon.events("definition_invalid")
    )
    wait_until(lambda: len(runs_of(project)) >= 2, timeout=10)
    assert {r.pipeline for r in runs_of(project)} == {"tick"}
    daemon.stop()


def test_schedule_parameters_and_experiment_reach_the_run(project, daemons):
    project.pipeline(
        "echo",
        """
        parameters:
          who: {type: str, default: nobody}
        steps:
          s: {type: python_script, script: s.py, arguments: ["${{parameters.who}}"]}
        """,
        {"s.py": "import sys; print('hello', sys.argv[1])\n"},
    )
    project.schedules("""
        schedules:
          - {name: greet, pipeline: echo, interval: 1h, parameters: {who: ops}, experiment: greetings}
    """)
    daemons(project).start()
    trigger(project, "greet")
    (run,) = wait_until(
        lambda: [r for r in runs_of(project) if r.status == "completed"], timeout=10
    )
    assert run.parameters == {"who": "ops"} and run.experiment == "greetings"
    assert run.trigger == "schedule:greet" and run.schedule == "greet"
