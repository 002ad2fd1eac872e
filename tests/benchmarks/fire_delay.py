"""Fire delay: in a running daemon, an interval schedule's nominal fire time → its step's first
line (the step writes a wall timestamp first thing). p50 / p99 / max over >= 100 fires, and the
part spent before the run was recorded; then the same with a warm local target (``warm_imports:
[]``: nothing preloaded, but each step forked from a zygote instead of a new interpreter). The
baseline is a bare ``python -c`` start, measured in the same run: the part of the delay no
scheduler can remove, short of not starting an interpreter at all."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks.figures import figure
from tests.benchmarks.warmth import spawned_steps, wait_zygote_ready, warm_project
from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess

FIRST_LINE = """import os, sys, time
t = time.time()
open(os.path.join(sys.argv[1], os.environ["PIPESCHED_RUN_ID"]), "w").write(repr(t))
"""


def _fire_delays(root: Path, fires: int, warm_imports: list[str] | None) -> tuple[list, list]:
    """Fire -> first line and fire -> run recorded, in ms, for ``fires`` fires of a daemon whose
    local target lists ``warm_imports`` (None: cold). A warm daemon's fires count once its
    zygote is ready; every step after that must have been forked."""
    project = warm_project(root, warm_imports)
    marks = root / "marks"
    marks.mkdir()
    project.pipeline(
        "first-line",
        f"""
        steps:
          s: {{type: python_script, script: s.py, arguments: ["{marks}"], allow_reuse: false}}
        """,
        {"s.py": FIRST_LINE},
    )
    project.schedules(
        "schedules:\n  - {name: fast, pipeline: first-line, interval: 500ms, concurrency: allow}\n"
    )
    daemon = DaemonProcess(project).start()
    try:
        counted_from = 0.0
        if warm_imports is not None:
            wait_zygote_ready(project)
            counted_from, spawned = time.time(), spawned_steps(project)
        already = len(os.listdir(marks))
        wait_until(lambda: len(os.listdir(marks)) >= already + fires + 3, timeout=fires * 2)
        if warm_imports is not None:
            assert spawned_steps(project) == spawned, "a step was spawned by a ready zygote"
    finally:
        daemon.stop()
        daemon.close()
    with project.store() as store:
        records = [
            f
            for f in store.list_fires("fast", limit=0)
            if f.run_id and f.nominal_time.timestamp() > counted_from
        ]
        created = {r.id: r.created_at for r in store.list_runs(limit=0)}
    delays, recorded = [], []
    for fire in sorted(records, key=lambda f: f.nominal_time)[2 : fires + 2]:  # skip warm-up
        mark = marks / fire.run_id
        if mark.exists():
            delays.append((float(mark.read_text()) - fire.nominal_time.timestamp()) * 1000)
            recorded.append((created[fire.run_id] - fire.nominal_time).total_seconds() * 1000)
    return delays, recorded


def main(quick: bool = False) -> list[dict]:
    fires = 30 if quick else 120
    with tempfile.TemporaryDirectory() as tmp:
        delays, recorded = _fire_delays(Path(tmp) / "cold", fires, None)
        warm_delays, _ = _fire_delays(Path(tmp) / "warm", fires, [])
    starts = []
    for _ in range(20):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        starts.append((time.perf_counter() - t0) * 1000)
    return [
        figure(
            "fire -> step's first line",
            delays,
            baseline=statistics.median(starts),
            baseline_name="python start",
        ),
        figure("fire -> run recorded", recorded),
        figure(
            "fire -> warm step's first line (p99 goal <= 10 ms)",
            warm_delays,
            baseline=statistics.median(delays),
            baseline_name="cold",
        ),
        figure("bare python start (floor)", starts),
    ]
