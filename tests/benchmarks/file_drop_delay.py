"""File-drop delay: a file renamed into (or closed in) a watched folder → its run's step's first
line (and, for renames, → the step's start as the run records it), in a running daemon. p50 /
p99 / max over N files of each kind. In-place writes wait for ``settle`` (here 200 ms) by
design; the baseline is that settle time."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from tests.benchmarks.figures import figure
from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess
from tests.projects import make_project

STEP = """import os, sys, time
t = time.time()
name = os.path.basename(sys.argv[1])
open(os.path.join(sys.argv[2], name), "w").write(repr(t))
"""
SETTLE = 0.2


def _drop(inbox: Path, name: str, *, rename: bool) -> float:
    if rename:
        tmp = inbox / f".{name}.part"
        tmp.write_text("x,y\n1,2\n")
        os.replace(tmp, inbox / name)
        return time.time()
    with open(inbox / name, "w") as handle:
        handle.write("x,y\n1,2\n")
    return time.time()  # closed


def _recorded_start(project, dropped: dict[str, float]) -> dict:
    """Rename into place -> the step's start as the run records it (what ``show`` says)."""
    store = project.store()
    try:
        delays = []
        for run in store.list_runs(limit=0):
            name = run.trigger.rsplit("/", 1)[-1]
            if run.schedule == "drop" and name in dropped:
                started = store.get_run_detail(run.id).attempts[0].started_at
                delays.append((started.timestamp() - dropped[name]) * 1000)
    finally:
        store.close()
    return figure("file renamed into place -> step's recorded start", delays)


def main(quick: bool = False) -> list[dict]:
    count = 40 if quick else 200
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        project = make_project(root)
        marks = root / "marks"
        marks.mkdir()
        project.pipeline(
            "drop",
            f"""
            parameters:
              f: {{type: path, default: "inbox"}}
            steps:
              s: {{type: python_script, script: s.py, arguments: ["${{{{parameters.f}}}}", "{marks}"], allow_reuse: false}}
            """,
            {"s.py": STEP},
        )
        project.schedules(f"""
            schedules:
              - name: drop
                pipeline: drop
                concurrency: allow
                on_change: {{datastore: default, path: inbox/, patterns: ["*.csv"], settle: {SETTLE},
                            data_path_parameter: f}}
        """)
        inbox = project.datastore / "inbox"
        inbox.mkdir(parents=True)
        daemon = DaemonProcess(project).start()
        figures = []
        try:
            for kind, rename in (("renamed into place", True), ("written in place, closed", False)):
                dropped = {}
                for i in range(count):
                    name = f"{kind[:3]}-{i:04d}.csv"
                    dropped[name] = _drop(inbox, name, rename=rename)
                    time.sleep(0.05)  # a steady stream, not a burst
                wait_until(lambda d=dropped: all((marks / n).exists() for n in d), timeout=120)
                delays = [(float((marks / n).read_text()) - t) * 1000 for n, t in dropped.items()]
                figures.append(
                    figure(
                        f"file {kind} -> step's first line",
                        delays,
                        baseline=None if rename else SETTLE * 1000,
                        baseline_name=None if rename else f"settle {SETTLE * 1000:.0f} ms",
                    )
                )
                if rename:
                    figures.append(_recorded_start(project, dropped))
        finally:
            daemon.stop()
            daemon.close()
    return figures
