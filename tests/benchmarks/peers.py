"""Peers, same work: the 10-step no-op chain and a prepare → train → register chain run cold
through ``pipesched run``, Prefect 3 (ephemeral), Dagster (``execute_in_process``) and Luigi
(local scheduler), against the same scripts run by a shell script (the floor) and by a minimal
Python driver (``peers_driver.py``: one interpreter plus a subprocess per step). Every process
caches its bytecode as an installed program does (see ``step_overhead.installed_env``).

Each peer lives in its own virtual environment under ``<work>/venvs/<peer>``, created and
pip-installed here only when ``--peers`` is given (never a project dependency; an existing venv
is reused, so ``--work DIR`` keeps them between runs). Each peer's run is one
``<venv>/bin/python <runner>`` process, so its time is cold like ``pipesched run``. Every tool
runs the scripts with this interpreter (numpy is here, not in the peers' venvs). Trials are
interleaved so machine noise hits all tools alike. ``PIPESCHED_BENCH_BEFORE=/path/to/a/checkout``
adds that checkout's ``pipesched run``, measured in the same trials."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.benchmarks.figures import figure
from tests.benchmarks.step_overhead import NOOP, _chain, installed_env, pipesched_command
from tests.projects import make_project

HERE = Path(__file__).resolve().parent
PEERS = {"prefect": "prefect>=3,<4", "dagster": "dagster", "luigi": "luigi"}

PREPARE = """\
import csv, random
from pathlib import Path
data = Path({data!r})
data.mkdir(parents=True, exist_ok=True)
rng = random.Random(7)
with open(data / "train.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["x", "y"])
    for _ in range(200):
        x = rng.uniform(0, 10)
        w.writerow([x, 3 * x + 1 + rng.gauss(0, 0.1)])
"""
TRAIN = """\
import json
from pathlib import Path
import numpy as np
data = Path({data!r})
xy = np.loadtxt(data / "train.csv", delimiter=",", skiprows=1)
a = np.column_stack([xy[:, 0], np.ones(len(xy))])
(slope, intercept), *_ = np.linalg.lstsq(a, xy[:, 1], rcond=None)
(data / "model.json").write_text(json.dumps({{"slope": slope, "intercept": intercept}}))
"""
REGISTER = """\
import shutil
from pathlib import Path
data = Path({data!r})
(data / "registry").mkdir(exist_ok=True)
shutil.copy(data / "model.json", data / "registry" / "model-v1.json")
"""
ML_YAML = """\
steps:
  prepare: {type: python_script, script: prepare.py, allow_reuse: false}
  train: {type: python_script, script: train.py, allow_reuse: false, depends_on: [prepare]}
  register: {type: python_script, script: register.py, allow_reuse: false, depends_on: [train]}
"""


def ensure_venv(work: Path, peer: str) -> Path | None:
    """The peer's venv python, created and pip-installed unless it already imports the peer;
    None (with pip's error printed) when it cannot be installed, so the other peers still run."""
    venv = work / "venvs" / peer
    python = venv / "bin" / "python"
    if python.exists() and _imports(python, peer):
        return python
    print(f"peers: installing {PEERS[peer]} into {venv} ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q", "--upgrade", PEERS[peer]]
    done = subprocess.run(pip, capture_output=True, text=True)
    if done.returncode or not _imports(python, peer):
        print(f"peers: cannot install {peer}, left out:\n{done.stderr[-3000:]}", file=sys.stderr)
        return None
    print(f"peers: {peer} installed in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return python


def _imports(python: Path, module: str) -> bool:
    return (
        subprocess.run([str(python), "-c", f"import {module}"], capture_output=True).returncode == 0
    )


def _version(python: Path, peer: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({peer!r}))"
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True).stdout.strip()


def peer_env(work: Path) -> dict[str, str]:
    """Quiet, local, ephemeral settings for every peer; their state stays in the work folder."""
    (work / "dagster_home").mkdir(parents=True, exist_ok=True)
    env = {
        k: v for k, v in installed_env(work).items() if not k.startswith(("PREFECT_", "DAGSTER_"))
    }
    env.pop("VIRTUAL_ENV", None)
    return {
        **env,
        "PREFECT_HOME": str(work / "prefect_home"),
        "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "true",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "DO_NOT_TRACK": "1",
        "DAGSTER_HOME": str(work / "dagster_home"),
    }


def _runners(
    work: Path, project, chain: str, scripts: list[Path], venvs: dict[str, Path]
) -> dict[str, Callable[[], None]]:
    """One callable per tool, each running the whole chain once in a fresh process."""
    env = peer_env(work)
    py, paths = sys.executable, [str(s) for s in scripts]
    hand = work / f"{chain}_by_hand.sh"
    hand.write_text("#!/bin/sh\nset -e\n" + "".join(f"{py} {s}\n" for s in paths))
    hand.chmod(0o755)

    def run(argv: list[str], **kw) -> None:
        done = subprocess.run(argv, capture_output=True, text=True, **kw)
        if done.returncode:
            raise RuntimeError(f"{argv[:2]} failed ({done.returncode}):\n{done.stderr[-3000:]}")

    def luigi() -> None:
        markers = Path(tempfile.mkdtemp(dir=work / "luigi_markers"))
        try:
            run(
                [str(venvs["luigi"]), str(HERE / "peers_luigi.py"), str(markers), py, *paths],
                env=env,
            )
        finally:
            shutil.rmtree(markers, ignore_errors=True)

    (work / "luigi_markers").mkdir(exist_ok=True)
    pipesched = pipesched_command()
    driver = [py, str(HERE / "peers_driver.py")] + [x for s in paths for x in ["--", py, s]]
    return {
        "pipesched": lambda: run(
            [pipesched, "-c", str(project.config_path), "run", chain], env=env
        ),
        "prefect": lambda: run(
            [str(venvs["prefect"]), str(HERE / "peers_prefect.py"), py, *paths], env=env
        ),
        "dagster": lambda: run(
            [str(venvs["dagster"]), str(HERE / "peers_dagster.py"), py, *paths], env=env
        ),
        "luigi": luigi,
        "pipesched before": lambda: run(
            [pipesched, "-c", str(project.config_path), "run", chain],
            env={**env, "PYTHONPATH": before_checkout(), "XDG_CACHE_HOME": str(work / "cache-b")},
        ),
        "driver": lambda: run(driver, env=env),
        "by hand": lambda: run([str(hand)], env=env),
    }


def main(quick: bool = False, peers: bool = False, work: str | None = None) -> list[dict]:
    if not peers:
        print(
            "peers: skipped (pass --peers to install Prefect, Dagster and Luigi and compare)",
            file=sys.stderr,
        )
        return []
    trials = 3 if quick else 7
    if work is None:
        with tempfile.TemporaryDirectory() as tmp:
            return _measure(Path(tmp), trials)
    return _measure(Path(work).resolve(), trials)


def chosen_peers() -> list[str]:
    """The peers to compare: all, or those ``PIPESCHED_BENCH_PEERS`` names (``luigi,prefect``)."""
    wanted = os.environ.get("PIPESCHED_BENCH_PEERS")
    if not wanted:
        return list(PEERS)
    return [peer for peer in PEERS if peer in {w.strip() for w in wanted.split(",")}]


def before_checkout() -> str:
    """``PIPESCHED_BENCH_BEFORE``: an earlier checkout whose ``pipesched run`` is measured too
    (with a plan cache of its own: a plan records the code that built it)."""
    return os.environ.get("PIPESCHED_BENCH_BEFORE", "")


def _measure(work: Path, trials: int) -> list[dict]:
    work.mkdir(parents=True, exist_ok=True)
    installed = {peer: ensure_venv(work, peer) for peer in chosen_peers()}
    venvs = {peer: python for peer, python in installed.items() if python is not None}
    print("peers: " + ", ".join(f"{p} {_version(v, p)}" for p, v in venvs.items()), file=sys.stderr)
    shutil.rmtree(work / "project", ignore_errors=True)
    project = make_project(work / "project")
    data = work / "project" / "data"
    noop = project.pipeline("noop10", _chain(10), {f"noop{i}.py": NOOP for i in range(10)})
    ml = project.pipeline(
        "ml3",
        ML_YAML,
        {
            "prepare.py": PREPARE.format(data=str(data)),
            "train.py": TRAIN.format(data=str(data)),
            "register.py": REGISTER.format(data=str(data)),
        },
    )
    chains = {
        "noop10": [noop / f"noop{i}.py" for i in range(10)],
        "ml3": [ml / f"{s}.py" for s in ("prepare", "train", "register")],
    }
    runners = {c: _runners(work, project, c, s, venvs) for c, s in chains.items()}
    before = ["pipesched before"] if before_checkout() else []
    tools = ["pipesched", *before, *venvs, "driver", "by hand"]
    for chain in chains:  # untimed warm-up: page cache, databases, Prefect's migrations
        for tool in list(tools):
            try:
                _timed(runners[chain][tool], data if chain == "ml3" else None)
            except RuntimeError as error:
                if tool not in PEERS:
                    raise
                print(f"peers: {tool} cannot run here, left out: {error}", file=sys.stderr)
                tools.remove(tool)
    samples = {c: {t: [] for t in tools} for c in chains}
    for _ in range(trials):
        for chain in chains:
            for tool in tools:
                samples[chain][tool].append(
                    _timed(runners[chain][tool], data if chain == "ml3" else None)
                )
    return _figures(samples)


def _timed(run: Callable[[], None], data: Path | None) -> float:
    """Milliseconds for one run; for the ML chain, checks the model really got registered."""
    if data is not None:
        shutil.rmtree(data, ignore_errors=True)
    t0 = time.perf_counter()
    run()
    elapsed = (time.perf_counter() - t0) * 1000
    if data is not None and not (data / "registry" / "model-v1.json").exists():
        raise RuntimeError("ml3 chain finished without registering the model")
    return elapsed


def _figures(samples: dict[str, dict[str, list[float]]]) -> list[dict]:
    out = []
    for chain, by_tool in samples.items():
        hand = statistics.median(by_tool["by hand"])
        ours = statistics.median(by_tool["pipesched"])
        driven = statistics.median(by_tool["driver"])
        out.append(
            figure(
                f"peers {chain}: pipesched / driver",
                by_tool["pipesched"],
                baseline=driven,
                baseline_name="driver",
            )
        )
        for tool in by_tool:
            base = None if tool == "by hand" else hand
            out.append(
                figure(
                    f"peers {chain}: {tool}",
                    by_tool[tool],
                    baseline=base,
                    baseline_name="by hand" if base else None,
                )
            )
        for peer in [t for t in by_tool if t in PEERS]:
            out.append(
                figure(
                    f"peers {chain}: {peer} / pipesched",
                    by_tool[peer],
                    baseline=ours,
                    baseline_name="pipesched",
                )
            )
    return out
