"""The shipped diabetes-training step scripts, run by hand as real processes.

No pipesched executor here: the test reads pipelines/diabetes-training/pipeline.yaml, fills in
parameter defaults and folders under tmp_path for the data, and runs each step's argv in
dependency order. So a script and the YAML that calls it cannot drift apart unnoticed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.projects import shipped

pytest.importorskip("pandas")
pytest.importorskip("sklearn")

PIPELINE_DIR = shipped("pipelines", "diabetes-training")
STEP_ORDER = ["prep", "train", "profile", "evaluate"]
PLACEHOLDER = re.compile(r"\$\{\{(parameters|data)\.(\w+)\}\}")


def load_definition() -> dict[str, Any]:
    return yaml.safe_load((PIPELINE_DIR / "pipeline.yaml").read_text())


def step_argv(
    definition: dict[str, Any], step: str, data_root: Path, **overrides: Any
) -> list[str]:
    """The step's argv with ``${{parameters.X}}`` and ``${{data.X}}`` filled in.

    A stand-in for the executor's substitution, kept to the two forms this pipeline uses.
    """
    params = {name: spec["default"] for name, spec in definition["parameters"].items()}
    params.update(overrides)

    def fill(match: re.Match[str]) -> str:
        kind, name = match.groups()
        return str(params[name]) if kind == "parameters" else str(data_root / name)

    spec = definition["steps"][step]
    arguments = [PLACEHOLDER.sub(fill, str(arg)) for arg in spec.get("arguments", [])]
    return [sys.executable, str(PIPELINE_DIR / spec["script"]), *arguments]


def run_step(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a step as the executor would: its own working folder holding an empty outputs/."""
    cwd.mkdir(parents=True)
    (cwd / "outputs").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPESCHED")}
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """prep, train and profile run once; returns the folder holding their data outputs."""
    root = tmp_path_factory.mktemp("diabetes")
    definition = load_definition()
    for step in STEP_ORDER[:-1]:
        done = run_step(step_argv(definition, step, root / "data"), root / "work" / step)
        assert done.returncode == 0, f"{step} failed:\n{done.stdout}\n{done.stderr}"
    return root / "data"


def test_steps_run_in_the_order_their_data_implies() -> None:
    definition = load_definition()
    produced_by = {
        data: name for name, spec in definition["steps"].items() for data in spec.get("outputs", [])
    }
    for position, step in enumerate(STEP_ORDER):
        for data in definition["steps"][step].get("inputs", []):
            assert STEP_ORDER.index(produced_by[data]) < position


def test_upstream_steps_write_their_data_outputs(upstream: Path) -> None:
    assert (upstream / "prepped_data" / "train.csv").stat().st_size > 0
    assert (upstream / "prepped_data" / "test.csv").stat().st_size > 0
    assert (upstream / "model" / "model.pkl").stat().st_size > 0
    assert (upstream / "data_profile" / "profile.json").stat().st_size > 0


def test_evaluate_passes_and_writes_metrics_json(upstream: Path, tmp_path: Path) -> None:
    argv = step_argv(load_definition(), "evaluate", upstream)
    done = run_step(argv, tmp_path / "evaluate")
    assert done.returncode == 0, done.stderr
    metrics = (tmp_path / "evaluate" / "outputs" / "metrics.json").read_text()
    assert '"accuracy"' in metrics
    assert '"auc"' in metrics


def test_evaluate_fails_below_min_accuracy(upstream: Path, tmp_path: Path) -> None:
    argv = step_argv(load_definition(), "evaluate", upstream, min_accuracy=0.999)
    done = run_step(argv, tmp_path / "evaluate")
    assert done.returncode != 0
    assert "below min_accuracy 0.999" in done.stderr
