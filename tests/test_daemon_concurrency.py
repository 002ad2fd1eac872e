"""Concurrency policies on a real daemon: a run longer than its interval.

The scenario (a 7-minute run on a 5-minute interval) runs here at 60x speed on the
test clock: 5 minutes pass in 5 real seconds, a step sleeps 7 real seconds."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

from scheduler.core.loopguard import ENV_VAR as ASSERT_OFF_LOOP
from scheduler.core.procinfo import is_alive
from scheduler.dispatch.dispatcher import Dispatcher, Outcome, RunRequest
from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess, set_clock
from tests.projects import Project, make_project

STEP = """
import os, pathlib, sys, time
pathlib.Path(sys.argv[1], f"{time.time():.3f}-{os.getpid()}").write_text("")
time.sleep(float(sys.argv[2]))
"""


def make(tmp_path: Path, policy: str, *, sleep: float, interval: str) -> tuple[Project, Path]:
    project = make_project(tmp_path, shutdown_grace="0s")
    marks = tmp_path / "marks"
    marks.mkdir()
    project.pipeline(
        "long",
        f"""
        steps:
          s: {{type: python_script, script: s.py, arguments: ["{marks}", "{sleep}"], allow_reuse: false}}
        """,
        {"s.py": STEP},
    )
    project.schedules(f"""
        schedules:
          - {{name: long, pipeline: long, interval: {interval}, concurrency: {policy}}}
    """)
    return project, marks


@pytest.fixture
def daemon_for():
    started: list[DaemonProcess] = []

    def start(project: Project, **kwargs) -> DaemonProcess:
        daemon = DaemonProcess(project, **kwargs).start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.close()


def fires(project: Project):
    with project.store() as store:
        return sorted(store.list_fires("long", limit=0), key=lambda f: f.nominal_time)


def runs(project: Project):
    with project.store() as store:
        return sorted(store.list_runs(limit=0), key=lambda r: r.id)


@pytest.mark.slow
def test_forbid_skips_the_fire_that_overlaps_a_seven_minute_run(tmp_path, daemon_for):
    project, _ = make(tmp_path, "forbid", sleep=7, interval="5m")
    clock = tmp_path / "clock"
    set_clock(clock, 0, rate=60)
    daemon = daemon_for(project, clock_file=clock)

    def three_settled():
        found = fires(project)[:3]
        return len(found) == 3 and all(f.outcome != "claimed" for f in found) and found

    first, second, third = wait_until(three_settled, timeout=30)
    assert first.outcome == "started"
    assert (second.outcome, second.reason) == ("skipped", "overlap")
    assert third.outcome == "started"  # :15 — the :05 run ended at :12
    daemon.stop()


@pytest.mark.slow
def test_queue_starts_the_next_run_right_after_in_order(tmp_path, daemon_for):
    project, _ = make(tmp_path, "queue", sleep=1.5, interval="1s")
    daemon = daemon_for(project)
    wait_until(lambda: len([r for r in runs(project) if r.status == "completed"]) >= 3, timeout=30)
    daemon.stop()
    assert all(f.outcome != "skipped" for f in fires(project))
    done = [r for r in runs(project) if r.status == "completed"]
    for earlier, later in itertools.pairwise(done):
        assert earlier.finished_at <= later.started_at  # never two at once, in order


def test_replace_cancels_the_old_run_and_leaves_no_orphan(tmp_path, daemon_for):
    project, marks = make(tmp_path, "replace", sleep=600, interval="1s")
    daemon = daemon_for(project)
    wait_until(lambda: any(r.status_reason == "replaced" for r in runs(project)), timeout=20)
    replaced = next(r for r in runs(project) if r.status_reason == "replaced")
    assert replaced.status == "canceled"
    wait_until(
        lambda: sum(is_alive(int(m.name.split("-")[1]), None) for m in marks.iterdir()) <= 1,
        timeout=10,
    )  # only the newest run's step lives
    daemon.stop()


def test_allow_lets_runs_overlap(tmp_path, daemon_for):
    project, _ = make(tmp_path, "allow", sleep=2.5, interval="1s")
    daemon = daemon_for(project)
    wait_until(lambda: len([r for r in runs(project) if r.status == "running"]) >= 2, timeout=20)
    daemon.stop()


# -- the dispatcher in-process: requests that arrive together ----------------------------------


@pytest.mark.parametrize("policy", ["forbid", "queue"])
def test_requests_of_one_schedule_that_arrive_together_see_each_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: str
):
    """Hashing and recording leave the loop, so two requests can be in flight at once; the
    second still sees the first's run (forbid: skipped; queue: waits, in arrival order)."""
    monkeypatch.setenv(ASSERT_OFF_LOOP, "1")
    project, _marks = make(tmp_path, policy, sleep=30, interval="1h")
    config, store = project.config(), project.store()
    pipeline = project.load("long")

    async def main() -> list[Outcome]:
        dispatcher = Dispatcher(config, store, kill_grace=0.5)
        requests = [
            RunRequest(pipeline=pipeline, schedule="long", concurrency=policy, trigger=f"t{i}")
            for i in range(3)
        ]
        outcomes = await asyncio.gather(*(dispatcher.submit(r) for r in requests))
        for outcome in outcomes:
            if outcome.run is not None:
                dispatcher.cancel(outcome.run.id, "test over")
        await dispatcher.shutdown(5)
        return list(outcomes)

    try:
        outcomes = asyncio.run(main())
    finally:
        store.close()
    if policy == "forbid":
        assert [o.outcome for o in outcomes] == ["started", "skipped", "skipped"]
    else:
        assert [o.outcome for o in outcomes] == ["started", "queued", "queued"]
        runs = [o.run for o in outcomes if o.run is not None]
        assert [r.trigger for r in runs] == ["t0", "t1", "t2"]
        assert runs[0].created_at <= runs[1].created_at <= runs[2].created_at
