"""Backfill: a daemon backfills a daily schedule of a no-op pipeline over 365 days (60 with
--quick), one run at a time. Figures: the whole backfill's wall time (request → every time
settled), and per run the backfill's own overhead between two runs (the previous run finished →
the next run started: settling the time, claiming the next, recording and queueing its run) and
each run's own time (started → finished, mostly one step's interpreter). The baseline of the
run's time is a bare ``python -c`` start, measured in the same run."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path

from tests.benchmarks.figures import figure
from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess, daemon_request
from tests.projects import make_project


def _backfill(root: Path, days: int) -> tuple[float, list[float], list[float]]:
    """Wall seconds of a ``days``-day backfill, and per run: gap since the previous run ended,
    and the run's own time (ms)."""
    project = make_project(root)
    project.pipeline(
        "noop",
        "steps:\n  s: {type: python_script, script: s.py, allow_reuse: false}\n",
        {"s.py": "pass\n"},
    )
    project.schedules(
        "schedules:\n  - {name: daily, pipeline: noop, cron: '0 2 * * *', timezone: UTC}\n"
    )
    first = date(2025, 1, 1)
    body = {"from": first.isoformat(), "to": (first + timedelta(days=days - 1)).isoformat()}
    daemon = DaemonProcess(project).start()
    try:
        t0 = time.perf_counter()
        status, made = daemon_request(project, "POST", "/api/v1/schedules/daily/backfills", body)
        assert status == 201, made

        def ended() -> bool:
            answer = daemon_request(project, "GET", f"/api/v1/backfills/{made['id']}")[1]
            return answer["status"] != "running"

        wait_until(ended, timeout=days * 5, interval=0.05)
        wall = time.perf_counter() - t0
    finally:
        daemon.stop()
        daemon.close()
    with project.store() as store:
        runs = sorted(
            (r for r in store.list_runs(limit=0) if r.trigger == f"backfill:{made['id']}"),
            key=lambda r: r.started_at or r.created_at,
        )
    assert len(runs) == days, f"{len(runs)} runs for {days} days"
    gaps = [
        (later.started_at - earlier.finished_at).total_seconds() * 1000
        for earlier, later in pairwise(runs)
        if later.started_at and earlier.finished_at
    ]
    own = [
        (r.finished_at - r.started_at).total_seconds() * 1000
        for r in runs
        if r.finished_at and r.started_at
    ]
    return wall, gaps, own


def main(quick: bool = False) -> list[dict]:
    days = 60 if quick else 365
    with tempfile.TemporaryDirectory() as tmp:
        wall, gaps, own = _backfill(Path(tmp), days)
    starts = []
    for _ in range(20):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        starts.append((time.perf_counter() - t0) * 1000)
    return [
        figure(f"backfill of {days} days, whole", [wall], unit="s"),
        figure(f"backfill of {days} days, per day", [wall * 1000 / days]),
        figure("backfill: previous run ended -> next started", gaps),
        figure(
            "backfill: one no-op run, started -> finished",
            own,
            baseline=statistics.median(starts),
            baseline_name="python start",
        ),
    ]
