"""The SDK from a warm notebook process: ``Experiment(ws, ...).submit(pipeline)`` of a 3-step chain
of no-op scripts, embedded (the run starts in a child process and is read back from the store),
until the run id is back and until ``wait_for_completion`` returns — against the same scripts run
one after another by a shell script and against a cold ``pipesched run`` of the same pipeline saved
as YAML. Trials are interleaved so machine noise hits every side alike."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from tests.benchmarks.figures import figure
from tests.projects import make_project

STEPS = 3


def main(quick: bool = False) -> list[dict]:
    from scheduler.sdk import Experiment, Pipeline, PythonScriptStep, StepSequence, Workspace

    trials = 3 if quick else 7
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        project = make_project(Path(tmp) / "home")
        scripts = Path(tmp) / "scripts"
        scripts.mkdir()
        for i in range(STEPS):
            (scripts / f"noop{i}.py").write_text("pass\n")
        shell = Path(tmp) / "by_hand.sh"
        shell.write_text(
            "#!/bin/sh\nset -e\n"
            + "".join(f"{sys.executable} {scripts}/noop{i}.py\n" for i in range(STEPS))
        )
        shell.chmod(0o755)
        ws = Workspace(config=project.config_path)
        steps = [
            PythonScriptStep(
                f"noop{i}.py", name=f"s{i}", source_directory=str(scripts), allow_reuse=False
            )
            for i in range(STEPS)
        ]
        pipeline = Pipeline(ws, steps=StepSequence(steps=steps))
        pipeline.save(project.root / "pipelines" / "chain")
        experiment = Experiment(ws, "bench")
        experiment.submit(pipeline).wait_for_completion(show_output=False)  # warm up
        by_hand, to_id, to_done, cli = [], [], [], []
        for _ in range(trials):
            t0 = time.perf_counter()
            subprocess.run([str(shell)], check=True)
            by_hand.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            run = experiment.submit(pipeline)
            to_id.append((time.perf_counter() - t0) * 1000)
            assert run.wait_for_completion(show_output=False) == "Finished"
            to_done.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            subprocess.run(
                ["pipesched", "-c", str(project.config_path), "run", "chain"],
                check=True,
                capture_output=True,
            )
            cli.append((time.perf_counter() - t0) * 1000)
    hand = statistics.median(by_hand)
    return [
        figure(f"{STEPS} no-op steps by a shell script", by_hand),
        figure(f"SDK {STEPS}-step submit: until the run id", to_id),
        figure(
            f"SDK {STEPS}-step submit: until wait_for_completion",
            to_done,
            baseline=hand,
            baseline_name="shell",
        ),
        figure(
            f"{STEPS} steps saved as YAML: pipesched run (cold)",
            cli,
            baseline=hand,
            baseline_name="shell",
        ),
    ]
