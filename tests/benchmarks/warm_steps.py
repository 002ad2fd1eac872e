"""Warm steps, cold (no ``warm_imports``) against warm (a zygote with pandas and scikit-learn
imported forks each step), side by side in one run, trials interleaved:

1. heavy-import step start, in-process: from just before the run is submitted to the step's
   first line after ``import pandas, sklearn.linear_model`` (the step writes a wall timestamp);
2. a 3-step pandas + scikit-learn chain through a real daemon, end to end (POST → the run's
   recorded finish);
3. a file-drop pipeline of one pandas scoring step: N files renamed into the watched folder in a
   burst, runs per second until every step has written its score;
4. memory: the zygote's resident set, a forked step's private memory (what it costs beyond the
   pages it shares with the zygote) and a cold step's resident set, each read by the step itself
   at its end (``/proc/self/smaps_rollup``, ``/proc/self/status``).

Figures 2 and 3 have a third side: warm, with each step script ending in ``os._exit(0)``, which
skips the interpreter's finalisation (in a forked step, that finalisation walks and frees the
whole heap inherited from the zygote, a copy-on-write fault per page it touches)."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks.figures import figure
from tests.benchmarks.warmth import (
    TARGET,
    forked_steps,
    metrics,
    spawned_steps,
    wait_zygote_ready,
    warm_project,
)
from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess, daemon_request
from tests.projects import Project

HEAVY = ("pandas", "sklearn.linear_model")
MB = 1024 * 1024

MEMORY = """
def memory():
    private = 0
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                private += int(line.split()[1]) * 1024
    with open("/proc/self/status") as f:
        rss = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS:"))
    return {"private": private, "rss": rss}
"""

HEAVY_STEP = (
    """import json, os, sys, time
import pandas, sklearn.linear_model
first_line = time.time()
"""
    + MEMORY
    + """
frame = pandas.DataFrame({"x": range(100), "y": [2 * i + 1 for i in range(100)]})
sklearn.linear_model.LinearRegression().fit(frame[["x"]], frame["y"])
mark = os.path.join(sys.argv[1], os.environ.get("PIPESCHED_RUN_ID", "by-hand"))
with open(mark + ".tmp", "w") as f:
    json.dump({"t": first_line, **memory()}, f)
os.replace(mark + ".tmp", mark)
"""
)

PREPARE = """import sys
import pandas, sklearn.linear_model
frame = pandas.DataFrame({"x": [i / 100 for i in range(100)]})
frame["y"] = 3 * frame["x"] + 1
sklearn.linear_model.LinearRegression().fit(frame[["x"]], frame["y"])  # a sanity fit
frame.to_csv(sys.argv[1], index=False)
"""
TRAIN = """import json, sys
import pandas, sklearn.linear_model
frame = pandas.read_csv(sys.argv[1])
model = sklearn.linear_model.LinearRegression().fit(frame[["x"]], frame["y"])
json.dump({"coef": float(model.coef_[0]), "intercept": float(model.intercept_)},
          open(sys.argv[2], "w"))
"""
SCORE = """import json, sys
import pandas, sklearn.linear_model
frame = pandas.read_csv(sys.argv[1])
trained = json.load(open(sys.argv[2]))
refit = sklearn.linear_model.LinearRegression().fit(frame[["x"]], frame["y"])
drift = abs(float(refit.coef_[0]) - trained["coef"])
open(sys.argv[3], "w").write(repr(drift))
"""
CHAIN = """
data:
  prepared: {}
  model: {}
  scored: {}
steps:
  a: {type: python_script, script: prepare.py, arguments: ["${{data.prepared}}/d.csv"], outputs: [prepared], allow_reuse: false}
  b: {type: python_script, script: train.py, arguments: ["${{data.prepared}}/d.csv", "${{data.model}}/m.json"], inputs: [prepared], outputs: [model], allow_reuse: false}
  c: {type: python_script, script: score.py, arguments: ["${{data.prepared}}/d.csv", "${{data.model}}/m.json", "${{data.scored}}/s.txt"], inputs: [prepared, model], outputs: [scored], allow_reuse: false}
"""
DROP_STEP = """import os, sys
import pandas
score = pandas.read_csv(sys.argv[1])["y"].mean()
out = os.path.join(sys.argv[2], os.path.basename(sys.argv[1]))
open(out + ".tmp", "w").write(repr(float(score)))
os.replace(out + ".tmp", out)
"""
SETTLE = 0.2


def speed_up(name: str, cold: list[float], warm: list[float]) -> dict:
    """Cold over warm, trial by trial (the trials are interleaved, so each pair saw the same
    machine)."""
    return figure(name, [c / w for c, w in zip(cold, warm, strict=True)], unit="x")


# -- 1 and 4: heavy-import step start and memory, in-process ----------------------------------


def _submit_and_run(project: Project, pipeline_name: str) -> tuple[float, str]:
    """Run one run through the executor in this process; (wall time just before submit, run)."""
    from scheduler.core.logging import configure_logging  # lazy: after the project exists
    from scheduler.dispatch.submit import submit_run  # lazy: after the project exists
    from scheduler.executor import RunExecutor  # lazy: after the project exists

    configure_logging(level="warning")
    config, store = project.config(), project.store()
    pipeline = project.load(pipeline_name)
    submitted = time.time()
    run = submit_run(config, store, pipeline, {})
    status = asyncio.run(
        RunExecutor(config=config, store=store, pipeline=pipeline, run=run).execute()
    )
    store.close()
    assert status == "completed", status
    return submitted, run.id


def _recorded_start(project: Project, run_id: str) -> float:
    """The step's start as the run records it (what ``show`` says), as a wall timestamp."""
    with project.store() as store:
        return store.get_run_detail(run_id).attempts[0].started_at.timestamp()


def heavy_import_start(root: Path, trials: int) -> list[dict]:
    """Cold and warm, interleaved; the warm pool is set aside (not stopped) for a cold trial,
    so every warm trial finds its zygote ready, as a daemon's steps do."""
    from scheduler.compute import warm  # lazy: benchmark-only access to the pool
    from scheduler.executor import warmpool  # lazy: benchmark-only access to the pool

    projects, marks = {}, {}
    for kind, modules in (("cold", None), ("warm", HEAVY)):
        project = warm_project(root / kind, modules)
        marks[kind] = root / kind / "marks"
        marks[kind].mkdir()
        project.pipeline(
            "heavy",
            f'steps:\n  s: {{type: python_script, script: heavy.py, arguments: ["{marks[kind]}"],'
            " allow_reuse: false}\n",
            {"heavy.py": HEAVY_STEP},
        )
        projects[kind] = project
    by_hand_marks = root / "by-hand"
    by_hand_marks.mkdir()
    script = root / "cold" / "pipelines" / "heavy" / "heavy.py"
    min_steps, warmpool.MIN_FOREGROUND_STEPS = warmpool.MIN_FOREGROUND_STEPS, 1  # one step: warm
    samples: dict[str, list[float]] = {"by hand": [], "cold": [], "warm": []}
    memory: dict[str, list[dict]] = {"cold": [], "warm": []}
    recorded: dict[str, list[float]] = {"cold": [], "warm": []}
    zygote_rss: list[float] = []
    try:
        _submit_and_run(projects["cold"], "heavy")  # untimed: page cache, database, plan
        _submit_and_run(projects["warm"], "heavy")  # untimed: starts the zygote, waits for it
        pool = warm.active_pool()
        assert pool is not None and pool.zygotes[TARGET].state == "ready"
        forks_before = pool.zygotes[TARGET].forks
        for _ in range(trials):
            began = time.time()
            subprocess.run([sys.executable, str(script), str(by_hand_marks)], check=True)
            mark = json.loads((by_hand_marks / "by-hand").read_text())
            samples["by hand"].append((mark["t"] - began) * 1000)
            for kind in ("cold", "warm"):
                warm.activate(pool if kind == "warm" else None)
                submitted, run_id = _submit_and_run(projects[kind], "heavy")
                mark = json.loads((marks[kind] / run_id).read_text())
                samples[kind].append((mark["t"] - submitted) * 1000)
                memory[kind].append(mark)
                recorded[kind].append((mark["t"] - _recorded_start(projects[kind], run_id)) * 1000)
            zygote_rss.append((pool.zygotes[TARGET].resident_bytes() or 0) / MB)
        forked = pool.zygotes[TARGET].forks - forks_before
        assert forked == trials, f"{forked} of {trials} warm steps forked"
    finally:
        warmpool.stop_warm_pool()
        warmpool.MIN_FOREGROUND_STEPS = min_steps
    by_hand = statistics.median(samples["by hand"])
    return [
        figure("heavy-import step start: python script.py", samples["by hand"]),
        figure("heavy-import step start: cold", samples["cold"], baseline=by_hand,
               baseline_name="by hand"),
        figure("heavy-import step start: warm (forked)", samples["warm"], baseline=by_hand,
               baseline_name="by hand"),
        speed_up("heavy-import start speed-up (goal>=50x)", samples["cold"],
                 samples["warm"]),
        figure("heavy-import: recorded start -> line, cold", recorded["cold"]),
        figure("heavy-import: recorded start -> line, warm", recorded["warm"]),
        figure("zygote resident memory (pandas+sklearn)", zygote_rss, unit="MB"),
        figure("warm step private memory", [m["private"] / MB for m in memory["warm"]],
               unit="MB", baseline=statistics.median(m["rss"] / MB for m in memory["cold"]),
               baseline_name="cold step RSS"),
        figure("warm step resident set (shared+private)", [m["rss"] / MB for m in memory["warm"]],
               unit="MB"),
        figure("cold step resident set", [m["rss"] / MB for m in memory["cold"]], unit="MB"),
        figure("cold step private memory", [m["private"] / MB for m in memory["cold"]],
               unit="MB"),
    ]  # fmt: skip


# -- 2 and 3: a real daemon, cold and warm side by side ----------------------------------------


FAST_EXIT = """
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)
"""


def fast_exit(script: str) -> str:
    """``script`` ending in ``os._exit(0)``: no interpreter finalisation, which in a step forked
    from a zygote holding pandas and scikit-learn copies and frees the zygote's whole heap."""
    return "import os, sys\n" + script + FAST_EXIT


def _daemon_project(root: Path, modules: tuple[str, ...] | None, marks: Path) -> Project:
    """Pipelines ``chain`` and ``score`` (the latter on file drops into ``inbox/``); a warm
    project also gets their fast-exit twins, ``chain-fast-exit`` and ``score-fast-exit``
    (drops into ``inbox-fast-exit/``)."""
    project = warm_project(root, modules)
    variants = [("", lambda script: script)]
    if modules is not None:
        variants.append(("-fast-exit", fast_exit))
    schedules = ["schedules:"]
    for suffix, edit in variants:
        project.pipeline(
            f"chain{suffix}",
            CHAIN,
            {"prepare.py": edit(PREPARE), "train.py": edit(TRAIN), "score.py": edit(SCORE)},
        )
        project.pipeline(
            f"score{suffix}",
            f"""
            parameters:
              f: {{type: path, default: "inbox"}}
            steps:
              s: {{type: python_script, script: s.py, arguments: ["${{{{parameters.f}}}}", "{marks}"], allow_reuse: false}}
            """,
            {"s.py": edit(DROP_STEP)},
        )
        schedules.append(
            f"  - {{name: drop{suffix}, pipeline: score{suffix}, concurrency: allow, on_change: "
            f'{{datastore: default, path: inbox{suffix}/, patterns: ["*.csv"], '
            f"settle: {SETTLE}, data_path_parameter: f}}}}"
        )
        (project.datastore / f"inbox{suffix}").mkdir(parents=True)
    project.schedules("\n".join(schedules) + "\n")
    return project


def _chain_run(project: Project, pipeline: str = "chain") -> float:
    """POST a chain run and wait for it; ms from just before the POST to its recorded finish."""
    began = time.time()
    status, body = daemon_request(project, "POST", f"/api/v1/pipelines/{pipeline}/runs", {})
    assert status == 202, body
    run_id = body["Id"]
    with project.store() as store:
        run = wait_until(
            lambda: (r := store.get_run(run_id)).finished_at is not None and r,
            timeout=120,
            interval=0.01,
        )
    assert run.status == "completed", (run.status, run.status_reason)
    return (run.finished_at.timestamp() - began) * 1000


def _burst(project: Project, marks: Path, prefix: str, count: int, inbox: str = "inbox") -> float:
    """Rename ``count`` small csv files into the watched folder at once; runs per second from
    the first rename to the last score written."""
    staging = project.root / f"staging-{prefix}"
    staging.mkdir()
    for i in range(count):
        (staging / f"{prefix}-{i:04d}.csv").write_text("x,y\n1,2\n3,4\n")
    folder = project.datastore / inbox
    names = sorted(os.listdir(staging))
    began = time.time()
    for name in names:
        os.replace(staging / name, folder / name)
    wait_until(lambda: all((marks / n).exists() for n in names), timeout=count * 3, interval=0.05)
    ended = max((marks / n).stat().st_mtime for n in names)
    return count / (ended - began)


#: The sides of the daemon figures: (project, pipeline suffix, label).
SIDES = (
    ("cold", "", "cold"),
    ("warm", "", "warm"),
    ("warm", "-fast-exit", "warm+os._exit"),
)


def daemon_figures(root: Path, trials: int, files: int, burst_trials: int) -> list[dict]:
    daemons, projects, marks = {}, {}, {}
    for kind, modules in (("cold", None), ("warm", HEAVY)):
        marks[kind] = root / kind / "marks"
        marks[kind].mkdir(parents=True)
        projects[kind] = _daemon_project(root / kind, modules, marks[kind])
    chain: dict[str, list[float]] = {label: [] for _, _, label in SIDES}
    rates: dict[str, list[float]] = {label: [] for _, _, label in SIDES}
    try:
        for kind, project in projects.items():
            daemons[kind] = DaemonProcess(project).start()
        ready = wait_zygote_ready(projects["warm"])
        for kind, suffix, _ in SIDES:  # untimed: page cache, database, plan
            _chain_run(projects[kind], f"chain{suffix}")
        for _ in range(trials):
            for kind, suffix, label in SIDES:
                chain[label].append(_chain_run(projects[kind], f"chain{suffix}"))
        for trial in range(burst_trials):
            for kind, suffix, label in SIDES:
                rates[label].append(
                    _burst(projects[kind], marks[kind], f"t{trial}{suffix}", files,
                           f"inbox{suffix}")
                )  # fmt: skip
        after = metrics(projects["warm"])
        forked, spawned = forked_steps(projects["warm"]), spawned_steps(projects["warm"])
        expected = 2 * (3 * (trials + 1) + files * burst_trials)
        assert forked == expected and spawned == 0, (forked, spawned, expected)
    finally:
        for daemon in daemons.values():
            daemon.stop()
            daemon.close()
    zygote_mb = [
        ready["pipesched_zygote_resident_bytes"] / MB,
        after["pipesched_zygote_resident_bytes"] / MB,
    ]
    cold_chain = statistics.median(chain["cold"])
    cold_rate = statistics.median(rates["cold"])
    out = [figure("3-step sklearn chain, daemon: cold", chain["cold"])]
    for _, _, label in SIDES[1:]:
        out.append(
            figure(f"3-step sklearn chain, daemon: {label}", chain[label],
                   baseline=cold_chain, baseline_name="cold")
        )  # fmt: skip
        out.append(speed_up(f"3-step chain speed-up: {label} (goal>=5x)", chain["cold"],
                            chain[label]))  # fmt: skip
    out.append(figure(f"{files}-file drop, pandas step: cold", rates["cold"], unit="runs/s"))
    for _, _, label in SIDES[1:]:
        out.append(
            figure(f"{files}-file drop, pandas step: {label}", rates[label], unit="runs/s",
                   baseline=cold_rate, baseline_name="cold")
        )  # fmt: skip
    out.append(figure("daemon's zygote resident memory (ready, after)", zygote_mb, unit="MB"))
    return out


def main(quick: bool = False) -> list[dict]:
    trials = 3 if quick else 9
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        figures = heavy_import_start(root / "inproc", trials)
        figures += daemon_figures(
            root / "daemon",
            trials=3 if quick else 7,
            files=30 if quick else 200,
            burst_trials=1,
        )
    return figures
