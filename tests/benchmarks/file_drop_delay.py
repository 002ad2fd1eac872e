"""File-drop delay: a file renamed into (or closed in) a watched folder → its run's step's first
line (and, for renames, → the step's start as the run records it), in a running daemon. p50 /
p99 / max over N files of each kind. In-place writes wait for ``settle`` (here 200 ms) by
design; the baseline is that settle time. Then renames again, into a daemon whose local target
is warm (``warm_imports: []``: each step forked from a zygote instead of a new interpreter)."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from tests.benchmarks.figures import figure
from tests.benchmarks.warmth import spawned_steps, wait_zygote_ready, warm_project
from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess
from tests.projects import Project

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


def _drop_project(root: Path, warm_imports: list[str] | None) -> tuple[Project, Path]:
    project = warm_project(root, warm_imports)
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
    (project.datastore / "inbox").mkdir(parents=True)
    return project, marks


def _stream(project: Project, marks: Path, kind: str, rename: bool, count: int) -> dict:
    """Drop ``count`` files at a steady pace; the name of each and when it was dropped."""
    inbox = project.datastore / "inbox"
    dropped = {}
    for i in range(count):
        name = f"{kind[:3]}-{i:04d}.csv"
        dropped[name] = _drop(inbox, name, rename=rename)
        time.sleep(0.05)  # a steady stream, not a burst
    wait_until(lambda d=dropped: all((marks / n).exists() for n in d), timeout=120)
    return dropped


def _first_lines(marks: Path, dropped: dict[str, float]) -> list[float]:
    return [(float((marks / n).read_text()) - t) * 1000 for n, t in dropped.items()]


def main(quick: bool = False) -> list[dict]:
    count = 40 if quick else 200
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        project, marks = _drop_project(Path(tmp) / "cold", None)
        daemon = DaemonProcess(project).start()
        try:
            for kind, rename in (("renamed into place", True), ("written in place, closed", False)):
                dropped = _stream(project, marks, kind, rename, count)
                figures.append(
                    figure(
                        f"file {kind} -> step's first line",
                        _first_lines(marks, dropped),
                        baseline=None if rename else SETTLE * 1000,
                        baseline_name=None if rename else f"settle {SETTLE * 1000:.0f} ms",
                    )
                )
                if rename:
                    figures.append(_recorded_start(project, dropped))
        finally:
            daemon.stop()
            daemon.close()
        cold = figures[0]["median"]
        project, marks = _drop_project(Path(tmp) / "warm", [])
        daemon = DaemonProcess(project).start()
        try:
            wait_zygote_ready(project)
            spawned = spawned_steps(project)
            dropped = _stream(project, marks, "renamed into place", True, count)
            assert spawned_steps(project) == spawned, "a step was spawned by a ready zygote"
        finally:
            daemon.stop()
            daemon.close()
        figures.append(
            figure(
                "file renamed into place -> warm step's first line (p50 goal <= 10 ms)",
                _first_lines(marks, dropped),
                baseline=cold,
                baseline_name="cold",
            )
        )
    return figures
