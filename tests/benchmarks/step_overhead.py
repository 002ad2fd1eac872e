"""Step overhead: a chain of no-op ``python_script`` steps through ``pipesched run`` (cold, from
the CLI) and through the executor in-process, against the same scripts run one after another by
a shell script. Trials are interleaved so machine noise hits both sides alike."""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks.figures import figure
from tests.projects import make_project

NOOP = "pass\n"


def _chain(n: int) -> str:
    lines = ["steps:"]
    for i in range(n):
        dep = f", depends_on: [s{i - 1}]" if i else ""
        lines.append(
            f"  s{i}: {{type: python_script, script: noop{i}.py, allow_reuse: false{dep}}}"
        )
    return "\n".join(lines) + "\n"


def main(quick: bool = False, steps: int = 10) -> list[dict]:
    trials = 3 if quick else 7
    return _chains(trials, steps) + three_step_chain(trials)


def _chains(trials: int, steps: int) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        project = make_project(Path(tmp))
        folder = project.pipeline(
            "chain", _chain(steps), {f"noop{i}.py": NOOP for i in range(steps)}
        )
        script = Path(tmp) / "by_hand.sh"
        script.write_text(
            "#!/bin/sh\nset -e\n"
            + "".join(f"{sys.executable} {folder}/noop{i}.py\n" for i in range(steps))
        )
        script.chmod(0o755)
        project.cli("run", "chain")  # warm the page cache and create the database
        by_hand, cli, inproc = [], [], []
        for _ in range(trials):
            t0 = time.perf_counter()
            subprocess.run([str(script)], check=True)
            by_hand.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            subprocess.run(
                ["pipesched", "-c", str(project.config_path), "run", "chain"],
                check=True,
                capture_output=True,
            )
            cli.append((time.perf_counter() - t0) * 1000)
            inproc.append(_in_process(project) * 1000)
    per_step = [(c - h) / steps for c, h in zip(inproc, by_hand, strict=True)]
    hand = statistics.median(by_hand)
    return [
        figure(f"{steps} no-op steps by a shell script", by_hand),
        figure(
            f"{steps} no-op steps: pipesched run (cold CLI)",
            cli,
            baseline=hand,
            baseline_name="shell",
        ),
        figure(
            f"{steps} no-op steps: executor in-process",
            inproc,
            baseline=hand,
            baseline_name="shell",
        ),
        figure("executor added time per step", per_step),
    ]


PREPARE = """import csv, random, sys
random.seed(1)
with open(sys.argv[1], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["x", "y"])
    for _ in range(1000):
        x = random.random()
        w.writerow([x, 2 * x + random.random() / 10])
"""
TRAIN = """import csv, json, sys
rows = [tuple(map(float, r)) for r in list(csv.reader(open(sys.argv[1])))[1:]]
n = len(rows); mx = sum(r[0] for r in rows) / n; my = sum(r[1] for r in rows) / n
slope = sum((x - mx) * (y - my) for x, y in rows) / sum((x - mx) ** 2 for x, _ in rows)
json.dump({"slope": slope, "intercept": my - slope * mx}, open(sys.argv[2], "w"))
"""
REGISTER = """import json, shutil, sys
model = json.load(open(sys.argv[1]))
shutil.copy(sys.argv[1], sys.argv[2])
print("registered", model)
"""


def three_step_chain(trials: int) -> list[dict]:
    """The issue's headline: prepare -> train -> register, tiny scripts, cold from the CLI."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        project = make_project(root)
        folder = project.pipeline(
            "three",
            """
            data:
              prepared: {}
              model: {}
              registry: {}
            steps:
              prepare: {type: python_script, script: prepare.py, arguments: ["${{data.prepared}}/d.csv"], outputs: [prepared], allow_reuse: false}
              train: {type: python_script, script: train.py, arguments: ["${{data.prepared}}/d.csv", "${{data.model}}/m.json"], inputs: [prepared], outputs: [model], allow_reuse: false}
              register: {type: python_script, script: register.py, arguments: ["${{data.model}}/m.json", "${{data.registry}}/m.json"], inputs: [model], outputs: [registry], allow_reuse: false}
            """,
            {"prepare.py": PREPARE, "train.py": TRAIN, "register.py": REGISTER},
        )
        work = root / "hand"
        script = root / "by_hand.sh"
        script.write_text(
            f"#!/bin/sh\nset -e\nmkdir -p {work}\n"
            f"{sys.executable} {folder}/prepare.py {work}/d.csv\n"
            f"{sys.executable} {folder}/train.py {work}/d.csv {work}/m.json\n"
            f"{sys.executable} {folder}/register.py {work}/m.json {work}/r.json > /dev/null\n"
        )
        script.chmod(0o755)
        project.cli("run", "three")
        by_hand, cli = [], []
        for _ in range(trials):
            t0 = time.perf_counter()
            subprocess.run([str(script)], check=True)
            by_hand.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            subprocess.run(
                ["pipesched", "-c", str(project.config_path), "run", "three"],
                check=True,
                capture_output=True,
            )
            cli.append((time.perf_counter() - t0) * 1000)
    return [
        figure("3-step chain by a shell script", by_hand),
        figure(
            "3-step chain: pipesched run (cold CLI)",
            cli,
            baseline=statistics.median(by_hand),
            baseline_name="shell (target <= 1.5x)",
        ),
    ]


def _in_process(project) -> float:
    from scheduler.core.logging import configure_logging
    from scheduler.dispatch.submit import submit_run
    from scheduler.executor import RunExecutor

    configure_logging(level="warning")
    config, store = project.config(), project.store()
    pipeline = project.load("chain")
    t0 = time.perf_counter()
    run = submit_run(config, store, pipeline, {})
    asyncio.run(RunExecutor(config=config, store=store, pipeline=pipeline, run=run).execute())
    elapsed = time.perf_counter() - t0
    store.close()
    return elapsed
