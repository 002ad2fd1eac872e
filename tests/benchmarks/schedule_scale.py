"""Scale of schedules: daemon start-up to READY and resident memory (VmRSS after READY) with
10, 1,000 and 10,000 interval/cron schedules naming one tiny pipeline, none due during the
benchmark (and 10,000 again with no two crons alike); and idle CPU (utime+stime of the daemon process) over a quiet window with 10,000
schedules. The baseline of every figure is the same measurement with 10 schedules."""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks.figures import figure
from tests.daemon_harness import DaemonProcess
from tests.projects import Project, make_project

SIZES = (10, 1_000, 10_000)
TICKS = os.sysconf("SC_CLK_TCK")


def _schedules(count: int, distinct: bool = False) -> str:
    """Half every-1000-hours intervals, half yearly crons: far apart, so none fires. The crons
    share 60 expressions, as generated schedules often do; with ``distinct`` each has its own
    (a day and month of its own too), so no fire time computed for one serves another."""
    lines = ["schedules:"]
    for i in range(count):
        if i % 2:
            when = "interval: 1000h"
        elif distinct:
            day, month = 1 + (i // 1440) % 28, 1 + (i // 40320) % 12
            when = f"cron: '{i % 60} {(i // 60) % 24} {day} {month} *'"
        else:
            when = f"cron: '{i % 60} {i % 24} 1 1 *'"
        lines.append(f"  - {{name: s{i:05d}, pipeline: tiny, {when}}}")
    return "\n".join(lines) + "\n"


def _project(root: Path, count: int, distinct: bool = False) -> Project:
    project = make_project(root)
    project.pipeline("tiny", "steps:\n  s: {type: python_script, script: s.py}\n", {"s.py": ""})
    project.schedules(_schedules(count, distinct))
    return project


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14, 15)


def _idle_cpu_percent(project: Project, seconds: float) -> float:
    daemon = DaemonProcess(project).start(timeout=120)
    try:
        time.sleep(2)  # let start-up work (first-fire computation, API bind) finish
        pid = daemon.proc.pid
        before, began = _cpu_seconds(pid), time.monotonic()
        time.sleep(seconds)  # measuring idleness: nothing to wait for but the clock
        return 100 * (_cpu_seconds(pid) - before) / (time.monotonic() - began)
    finally:
        daemon.stop()
        daemon.close()


def main(quick: bool = False) -> list[dict]:
    trials = 2 if quick else 5
    idle_seconds = 10.0 if quick else 60.0
    # (label, count, each cron its own expression)
    cases = [(f"{n} schedules", n, False) for n in SIZES]
    cases.append((f"{SIZES[-1]} schedules, each cron its own", SIZES[-1], True))
    ready: dict[str, list[float]] = {label: [] for label, _, _ in cases}
    rss: dict[str, list[float]] = {label: [] for label, _, _ in cases}
    with tempfile.TemporaryDirectory() as tmp:
        projects = {
            label: _project(Path(tmp) / f"case{i}", n, distinct)
            for i, (label, n, distinct) in enumerate(cases)
        }
        for trial in range(trials + 1):  # trial 0 warms caches and migrates each database
            for label, _, _ in cases:
                daemon = DaemonProcess(projects[label]).start(timeout=120)
                try:
                    if trial:
                        ready[label].append(daemon.ready_after * 1000)
                        rss[label].append(_rss_mb(daemon.proc.pid))
                finally:
                    daemon.stop()
                    daemon.close()
        ends = (cases[0][0], cases[len(SIZES) - 1][0])
        idle = {SIZES[0]: _idle_cpu_percent(projects[ends[0]], idle_seconds)}
        idle[SIZES[-1]] = _idle_cpu_percent(projects[ends[1]], idle_seconds)
        print(f"idle CPU over {idle_seconds:.0f}s: {idle}", file=sys.stderr)
    base = cases[0][0]
    figures = []
    for label, _, _ in cases:
        figures.append(
            figure(
                f"daemon start to READY, {label}",
                ready[label],
                baseline=_median(ready[base]),
                baseline_name=base,
            )
        )
    for label, _, _ in cases:
        figures.append(
            figure(
                f"daemon VmRSS after READY, {label}",
                rss[label],
                unit="MB",
                baseline=_median(rss[base]),
                baseline_name=base,
            )
        )
    for n, value in idle.items():
        figures.append(
            figure(
                f"daemon idle CPU over {idle_seconds:.0f}s, {n} schedules",
                [value],
                unit="% CPU",
                baseline=idle[SIZES[0]] or None,
                baseline_name=base,
            )
        )
    return figures  # fmt: skip


def _median(values: list[float]) -> float:
    return statistics.median(values)
