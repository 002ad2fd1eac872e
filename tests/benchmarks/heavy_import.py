"""Heavy-import step start: a ``python_script`` step whose script imports pandas and
scikit-learn and exits, through the executor in-process and cold via ``pipesched run``, against
``python script.py`` by hand. Interleaved trials; the gap motivates a warm executor later."""

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

SCRIPT = "import pandas\nimport sklearn.linear_model\n"
PIPELINE = "steps:\n  s: {type: python_script, script: heavy.py, allow_reuse: false}\n"


def _in_process(project) -> float:
    """Seconds from submit to the run finished, executor in this process (no CLI start-up)."""
    from scheduler.core.logging import configure_logging
    from scheduler.dispatch.submit import submit_run
    from scheduler.executor import RunExecutor

    configure_logging(level="warning")
    config, store = project.config(), project.store()
    pipeline = project.load("heavy")
    began = time.perf_counter()
    run = submit_run(config, store, pipeline, {})
    asyncio.run(RunExecutor(config=config, store=store, pipeline=pipeline, run=run).execute())
    elapsed = time.perf_counter() - began
    store.close()
    return elapsed


def main(quick: bool = False) -> list[dict]:
    trials = 3 if quick else 9
    with tempfile.TemporaryDirectory() as tmp:
        project = make_project(Path(tmp))
        folder = project.pipeline("heavy", PIPELINE, {"heavy.py": SCRIPT})
        done = project.cli("run", "heavy")  # warm the page cache, create the database
        assert done.returncode == 0, done.stderr
        by_hand, cli, inproc = [], [], []
        command = ["pipesched", "-c", str(project.config_path), "run", "heavy"]
        for _ in range(trials):
            began = time.perf_counter()
            subprocess.run([sys.executable, str(folder / "heavy.py")], check=True)
            by_hand.append((time.perf_counter() - began) * 1000)
            began = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            cli.append((time.perf_counter() - began) * 1000)
            inproc.append(_in_process(project) * 1000)
    base = statistics.median(by_hand)
    added = [i - h for i, h in zip(inproc, by_hand, strict=True)]
    return [
        figure("import pandas+sklearn: python script.py", by_hand),
        figure("import pandas+sklearn: pipesched run (cold)", cli, baseline=base,
               baseline_name="by hand"),
        figure("import pandas+sklearn: executor in-process", inproc, baseline=base,
               baseline_name="by hand"),
        figure("import pandas+sklearn: executor added time", added),
    ]  # fmt: skip
