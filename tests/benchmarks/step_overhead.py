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


def _figure(
    name: str,
    samples: list[float],
    unit: str,
    baseline: list[float] | None = None,
    baseline_name: str | None = None,
) -> dict:
    median = statistics.median(samples)
    ratio = median / statistics.median(baseline) if baseline else None
    return {
        "name": name,
        "unit": unit,
        "median": median,
        "min": min(samples),
        "max": max(samples),
        "ratio": ratio,
        "baseline": baseline_name,
        "trials": len(samples),
    }


def main(quick: bool = False, steps: int = 10) -> list[dict]:
    trials = 3 if quick else 7
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
    return [
        _figure(f"{steps} no-op steps by a shell script", by_hand, "ms"),
        _figure(f"{steps} no-op steps: pipesched run (cold CLI)", cli, "ms", by_hand, "shell"),
        _figure(f"{steps} no-op steps: executor in-process", inproc, "ms", by_hand, "shell"),
        _figure("executor added time per step", per_step, "ms"),
    ]


def _in_process(project) -> float:
    from scheduler.executor import RunExecutor
    from scheduler.logging import configure_logging
    from scheduler.submit import submit_run

    configure_logging(level="warning")
    config, store = project.config(), project.store()
    pipeline = project.load("chain")
    t0 = time.perf_counter()
    run = submit_run(config, store, pipeline, {})
    asyncio.run(RunExecutor(config=config, store=store, pipeline=pipeline, run=run).execute())
    elapsed = time.perf_counter() - t0
    store.close()
    return elapsed
