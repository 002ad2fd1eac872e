"""Fire delay: in a running daemon, an interval schedule's nominal fire time → its step's first
line (the step writes a wall timestamp first thing). p50 / p99 / max over >= 100 fires, and the
part spent before the run was recorded. The baseline is a bare ``python -c`` start, measured in
the same run: the part of the delay no scheduler can remove."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks.figures import figure
from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess
from tests.projects import make_project

FIRST_LINE = """import os, sys, time
t = time.time()
open(os.path.join(sys.argv[1], os.environ["PIPESCHED_RUN_ID"]), "w").write(repr(t))
"""


def main(quick: bool = False) -> list[dict]:
    fires = 30 if quick else 120
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        project = make_project(root)
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
            "schedules:\n  - {name: fast, pipeline: first-line, interval: 500ms, "
            "concurrency: allow}\n"
        )
        daemon = DaemonProcess(project).start()
        try:
            wait_until(lambda: len(os.listdir(marks)) >= fires + 3, timeout=fires * 2)
        finally:
            daemon.stop()
            daemon.close()
        with project.store() as store:
            records = [f for f in store.list_fires("fast", limit=0) if f.run_id]
            created = {r.id: r.created_at for r in store.list_runs(limit=0)}
        delays, recorded = [], []
        for fire in sorted(records, key=lambda f: f.nominal_time)[2 : fires + 2]:  # skip warm-up
            mark = marks / fire.run_id
            if mark.exists():
                delays.append((float(mark.read_text()) - fire.nominal_time.timestamp()) * 1000)
                recorded.append((created[fire.run_id] - fire.nominal_time).total_seconds() * 1000)
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
        figure("bare python start (floor)", starts),
    ]
