"""Read commands, cold: each of ``runs``, ``show``, ``logs``, ``schedules``, ``fires``,
``pipelines``, ``next`` and ``metrics`` as a new process (the page cache warm) on a store of
10^6 runs (quick: 10^5), without a daemon and then with one, against ``python -c pass``
measured in the same rounds (the ratio is the figure that matters: the target is 6x).

The history is two real runs of pipeline ``train`` (metrics, step logs) on top of runs filled
in bulk (``history_scale.fill_runs``). ``PIPESCHED_BENCH_PYTHONPATH`` runs the commands from
another checkout (e.g. the main branch, for a before/after), on the store built here.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks.figures import figure
from tests.benchmarks.history_scale import fill_runs
from tests.daemon_harness import DaemonProcess
from tests.projects import Project, make_project

TRAIN = """
    parameters:
      accuracy: {type: float, default: 0.5}
    steps:
      train:
        type: python_script
        script: train.py
        arguments: [--accuracy, "${{parameters.accuracy}}"]
"""
TRAIN_SCRIPT = """
    import sys
    from scheduler.runtime import Run

    Run.get_context().log("accuracy", float(sys.argv[2]))
    print("trained")
"""
SCHEDULES = """
    schedules:
      - name: weekly
        pipeline: train
        cron: "0 0 * * MON"
"""


def build(root: Path, size: int) -> tuple[Project, str]:
    """A project whose store holds ``size`` filled runs and two real ones; the newest's id."""
    project = make_project(root)
    project.pipeline("train", TRAIN, {"train.py": TRAIN_SCRIPT})
    project.schedules(SCHEDULES)
    with project.store() as store:
        began = time.perf_counter()
        fill_runs(store, size)
        print(f"cli_reads: filled {size} runs in {time.perf_counter() - began:.1f}s",
              file=sys.stderr)  # fmt: skip
    newest = ""
    for accuracy in ("0.8", "0.9"):
        done = project.cli("run", "train", "-p", f"accuracy={accuracy}", "--json")
        assert done.returncode == 0, done.stderr
        newest = json.loads(done.stdout)["id"]
    return project, newest


def commands(newest: str) -> dict[str, list[str]]:
    return {
        "runs": ["runs"],
        "runs --json": ["runs", "--json"],
        "show": ["show", newest],
        "logs": ["logs", newest, "--step", "train"],
        "schedules": ["schedules"],
        "fires": ["fires"],
        "pipelines": ["pipelines"],
        "next": ["next", "0 0 * * MON"],
        "metrics": ["metrics", "train"],
    }


def measure(project: Project, newest: str, trials: int) -> dict[str, list[float]]:
    """Milliseconds per cold command, ``python -c pass`` among them, in interleaved rounds so
    that a busy moment of the machine weighs on all alike."""
    env = {**os.environ, "PIPESCHED_CONFIG": str(project.config_path), "NO_COLOR": "1"}
    env.pop("PIPESCHED_URL", None)
    other = os.environ.get("PIPESCHED_BENCH_PYTHONPATH")
    if other:
        env["PYTHONPATH"] = other
    runs = {"python -c pass": [sys.executable, "-c", "pass"]}
    runs |= {name: [sys.executable, "-m", "scheduler.cli", *args]
             for name, args in commands(newest).items()}  # fmt: skip
    for name, argv in list(runs.items()):  # once each first: a failure shows before timing
        done = subprocess.run(argv, env=env, cwd=project.root, capture_output=True, timeout=120)
        if done.returncode != 0:  # e.g. a command an older checkout lacks
            print(f"cli_reads: left out {name}: {done.stderr.decode().strip()[-200:]}",
                  file=sys.stderr)  # fmt: skip
            del runs[name]
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(trials):
        for name, argv in runs.items():
            began = time.perf_counter()
            # No timeout: with one, the wait polls in 50 ms steps and the figures with it.
            subprocess.run(argv, env=env, cwd=project.root, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=True)  # fmt: skip
            samples[name].append((time.perf_counter() - began) * 1000)
    return samples


def main(quick: bool = False) -> list[dict]:
    size = 100_000 if quick else 1_000_000
    trials = 3 if quick else 11
    label = f"{size:.0e}".replace("+0", "")
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        project, newest = build(Path(tmp) / "p", size)
        without = measure(project, newest, trials)
        daemon = DaemonProcess(project).start()
        try:
            with_daemon = measure(project, newest, trials)
        finally:
            daemon.close()
    for where, samples in (("no daemon", without), ("daemon", with_daemon)):
        base = statistics.median(samples["python -c pass"])
        for name, values in samples.items():
            figures.append(figure(f"cli {label} {where}: {name}", values, baseline=base,
                                  baseline_name="python -c pass"))  # fmt: skip
    return figures
