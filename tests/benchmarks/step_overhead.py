"""Step overhead: a chain of no-op ``python_script`` steps through ``pipesched run`` (cold, from
the CLI) and through the executor in-process, against the same scripts run one after another by
a shell script; and the issue's 3-step chain (prepare → train → register) through ``pipesched
run``, a minimal Python driver and a shell script, side by side. Trials are interleaved so
machine noise hits every side alike.

Every process runs as an installed program does, with its bytecode cached (in a folder of the
benchmark's, so no checkout gets ``__pycache__``); a development environment's
``PYTHONDONTWRITEBYTECODE`` would otherwise recompile pipesched's sources on every run and none of
a peer's installed ones. ``PIPESCHED_BENCH_BEFORE=/path/to/a/checkout`` adds that checkout's
``pipesched run`` to the 3-step chain, measured in the same run: before and after, side by side.
Last, the no-op chain in a running daemon, cold and warm (each step forked from a zygote)."""

from __future__ import annotations

import asyncio
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
from tests.daemon_harness import DaemonProcess, daemon_request
from tests.projects import make_project

NOOP = "pass\n"
HERE = Path(__file__).resolve().parent
BEFORE_ENV = "PIPESCHED_BENCH_BEFORE"


def installed_env(work: Path) -> dict[str, str]:
    """The environment of every timed process: bytecode cached under ``work``, plans too."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    env["XDG_CACHE_HOME"] = str(work / "cache")
    return env


def pipesched_command() -> str:
    """The ``pipesched`` beside this interpreter: a version manager's shim costs a shell."""
    beside = Path(sys.executable).parent / "pipesched"
    return str(beside) if beside.exists() else "pipesched"


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
    return _chains(trials, steps) + three_step_chain(trials) + daemon_chains(trials, steps)


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
        env = installed_env(Path(tmp))
        ours = [pipesched_command(), "-c", str(project.config_path), "run", "chain"]
        for argv in ([str(script)], ours):  # untimed: page cache, database, bytecode, plan
            subprocess.run(argv, check=True, capture_output=True, env=env)
        by_hand, cli, inproc = [], [], []
        for _ in range(trials):
            t0 = time.perf_counter()
            subprocess.run([str(script)], check=True, env=env)
            by_hand.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            subprocess.run(ours, check=True, capture_output=True, env=env)
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
    """The issue's headline: prepare -> train -> register, tiny scripts, cold from the CLI,
    against the scripts by hand and a minimal driver (and an earlier checkout, when given)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = installed_env(root)
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
        work.mkdir()
        py = sys.executable
        steps = [
            [py, f"{folder}/prepare.py", f"{work}/d.csv"],
            [py, f"{folder}/train.py", f"{work}/d.csv", f"{work}/m.json"],
            [py, f"{folder}/register.py", f"{work}/m.json", f"{work}/r.json"],
        ]
        script = root / "by_hand.sh"
        script.write_text(
            "#!/bin/sh\nset -e\n" + "".join(" ".join(argv) + " > /dev/null\n" for argv in steps)
        )
        script.chmod(0o755)
        driver = [py, str(HERE / "peers_driver.py")] + [x for argv in steps for x in ["--", *argv]]
        ours = [pipesched_command(), "-c", str(project.config_path), "run", "three"]
        tools = {"by hand": [str(script)], "driver": driver, "pipesched": ours}
        before = os.environ.get(BEFORE_ENV)
        envs = {tool: env for tool in tools}
        if before:
            tools["pipesched before"] = ours
            # Its own plan cache: a plan records the code that built it, so two checkouts
            # sharing one cache would each find the other's plan stale and never run theirs.
            envs["pipesched before"] = {
                **env,
                "PYTHONPATH": before,
                "XDG_CACHE_HOME": str(root / "cache-before"),
            }
        for tool, argv in tools.items():  # untimed: page cache, database, bytecode, plan
            subprocess.run(argv, check=True, capture_output=True, env=envs[tool])
        samples: dict[str, list[float]] = {tool: [] for tool in tools}
        for _ in range(trials):
            for tool, argv in tools.items():
                t0 = time.perf_counter()
                subprocess.run(argv, check=True, capture_output=True, env=envs[tool])
                samples[tool].append((time.perf_counter() - t0) * 1000)
    hand = statistics.median(samples["by hand"])
    driven = statistics.median(samples["driver"])
    out = [
        figure("3-step chain by a shell script", samples["by hand"]),
        figure(
            "3-step chain: minimal Python driver",
            samples["driver"],
            baseline=hand,
            baseline_name="shell",
        ),
    ]
    for tool in [t for t in tools if t.startswith("pipesched")]:
        label = "pipesched run (cold CLI)" + (", before" if tool != "pipesched" else "")
        out.append(
            figure(
                f"3-step chain: {label}",
                samples[tool],
                baseline=hand,
                baseline_name="shell (target <= 2x)",
            )
        )
        out.append(
            figure(
                f"3-step chain: {label} / driver",
                samples[tool],
                baseline=driven,
                baseline_name="driver",
            )
        )
    return out


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


def _daemon_chain_run(project) -> float:
    """One chain run submitted to the daemon; ms from its recorded start to its finish."""
    status, body = daemon_request(project, "POST", "/api/v1/pipelines/chain/runs", {})
    assert status == 202, body
    with project.store() as store:
        run = wait_until(
            lambda: (r := store.get_run(body["Id"])).finished_at is not None and r,
            timeout=60,
            interval=0.01,
        )
    assert run.status == "completed", run.status
    return (run.finished_at - run.started_at).total_seconds() * 1000


def daemon_chains(trials: int, steps: int) -> list[dict]:
    """The no-op chain in a running daemon, cold and warm (``warm_imports: []``: each step
    forked from a zygote), trials interleaved between the two daemons; against the shell."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        projects = {
            "cold": warm_project(root / "cold", None),
            "warm": warm_project(root / "warm", []),
        }
        for project in projects.values():
            project.pipeline("chain", _chain(steps), {f"noop{i}.py": NOOP for i in range(steps)})
        folder = projects["cold"].root / "pipelines" / "chain"
        script = root / "by_hand.sh"
        script.write_text(
            "#!/bin/sh\nset -e\n"
            + "".join(f"{sys.executable} {folder}/noop{i}.py\n" for i in range(steps))
        )
        script.chmod(0o755)
        env = installed_env(root)
        daemons = {}
        samples: dict[str, list[float]] = {"by hand": [], "cold": [], "warm": []}
        try:
            for kind, project in projects.items():
                daemons[kind] = DaemonProcess(project).start()
            wait_zygote_ready(projects["warm"])
            subprocess.run([str(script)], check=True, env=env)  # untimed: page cache
            for project in projects.values():
                _daemon_chain_run(project)  # untimed: database, plan
            spawned = spawned_steps(projects["warm"])
            for _ in range(trials):
                t0 = time.perf_counter()
                subprocess.run([str(script)], check=True, env=env)
                samples["by hand"].append((time.perf_counter() - t0) * 1000)
                for kind, project in projects.items():
                    samples[kind].append(_daemon_chain_run(project))
            assert spawned_steps(projects["warm"]) == spawned, "a step was spawned, not forked"
        finally:
            for daemon in daemons.values():
                daemon.stop()
                daemon.close()
    hand = statistics.median(samples["by hand"])
    added = [(c - h) / steps for c, h in zip(samples["cold"], samples["by hand"], strict=True)]
    return [
        figure(f"{steps} no-op steps in the daemon: cold", samples["cold"], baseline=hand,
               baseline_name="shell"),
        figure(f"{steps} no-op steps in the daemon: warm", samples["warm"], baseline=hand,
               baseline_name="shell"),
        figure("daemon added time per step (cold, over the shell)", added),
        figure("daemon time per step, warm, all in (goal <= 3 ms)",
               [w / steps for w in samples["warm"]]),
    ]  # fmt: skip
