"""The hand-over from start-up catch-up to the timer, on a real daemon with a fast test clock: a
fire time that falls due while catch-up is still firing the missed ones runs once, never zero
times."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise
from pathlib import Path

from tests.conftest import wait_until
from tests.daemon_harness import set_clock
from tests.projects import Project, make_project

INTERVAL = 10


def nominal_times(project: Project) -> list:
    with project.store() as store:
        return sorted(f.nominal_time for f in store.list_fires("tick", limit=0))


def test_a_time_due_during_catch_up_is_fired_by_the_timer(tmp_path: Path, daemons) -> None:
    project = make_project(tmp_path, shutdown_grace="1s")
    project.pipeline(
        "tick", {"steps": {"s": {"type": "command", "command": ["true"], "allow_reuse": False}}}
    )
    project.schedules(f"""
        schedules:
          - {{name: tick, pipeline: tick, interval: {INTERVAL}s, catchup: all,
              catchup_limit: 1000, concurrency: allow}}
    """)
    clock = tmp_path / "clock"
    # At 50x a fire time comes every 0.2 s: catching up on 30 of them takes longer than that.
    set_clock(clock, 0, rate=50)
    daemon = daemons(project, clock_file=clock).start()
    wait_until(lambda: len(nominal_times(project)) >= 3, timeout=20)
    assert daemon.stop() == 0
    set_clock(clock, 300, rate=50)  # down for five minutes of the test clock
    daemon = daemons(project, clock_file=clock).start()
    before = len(nominal_times(project))
    wait_until(lambda: len(nominal_times(project)) >= before + 5, timeout=20)
    assert daemon.stop() == 0
    times = nominal_times(project)
    never_fired = [
        earlier + timedelta(seconds=INTERVAL)
        for earlier, later in pairwise(times)
        if later - earlier > timedelta(seconds=INTERVAL)
    ]
    assert never_fired == []
