"""Models in step scripts (``scheduler.runtime``, standard library only): processes that claim
versions of one model at once each get their own; ``Model.get_model_path`` resolves by folder,
without the store; a step on an interpreter without pipesched registers a model; outside a step
``register_model`` says what to use instead."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scheduler.dispatch.submit import submit_run
from scheduler.executor.run import ExecutionOptions, RunExecutor
from scheduler.runtime import (
    ENV_MODELS_DIR,
    Model,
    ModelNotFound,
    Run,
    claim_version,
    model_versions,
    read_metrics_file,
    read_model_requests,
    stage_model,
)
from scheduler.store.model_files import models_root
from tests.conftest import wait_until
from tests.projects import make_project

REPO = Path(__file__).resolve().parents[1]


def test_processes_claiming_at_once_get_distinct_versions(tmp_path: Path):
    root = tmp_path / "models"
    go = tmp_path / "go"
    code = textwrap.dedent(
        """
        import pathlib, sys, time
        from scheduler.runtime import claim_version, stage_model
        root, go, me = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]
        source = pathlib.Path(root).parent / f"src-{me}" / "model.pkl"
        source.parent.mkdir(parents=True)
        source.write_text(me)
        pathlib.Path(root).parent.joinpath(f"ready-{me}").touch()
        while not go.exists():
            time.sleep(0.001)
        for _ in range(5):
            print(claim_version(root, "raced", stage_model(root, source))[0], flush=True)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(root), str(go), str(n)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for n in range(4)
    ]
    try:
        wait_until(lambda: all((tmp_path / f"ready-{n}").exists() for n in range(4)), timeout=30)
        go.touch()
        outputs = [child.communicate(timeout=60) for child in children]
    finally:
        for child in children:
            child.kill()
    claimed = {int(line): str(n) for n, (out, _) in enumerate(outputs) for line in out.split()}
    assert sorted(claimed) == list(range(1, 21)), [err for _, err in outputs]
    assert model_versions(root, "raced") == list(range(1, 21))
    for version, writer in claimed.items():
        assert (root / "raced" / str(version) / "model.pkl").read_text() == writer


def test_get_model_path_in_a_step_reads_the_folder(tmp_path: Path, monkeypatch):
    root = tmp_path / "models"
    for content in ("one", "two"):
        source = tmp_path / content / "model.pkl"
        source.parent.mkdir()
        source.write_text(content)
        claim_version(root, "m", stage_model(root, source))
    monkeypatch.setenv(ENV_MODELS_DIR, str(root))
    assert Path(Model.get_model_path("m")).read_text() == "two"
    assert Path(Model.get_model_path("m", version=1)).read_text() == "one"
    assert Model.get_model_path("m", 2) == str(root / "m" / "2" / "model.pkl")
    with pytest.raises(ModelNotFound, match=r"has no version 3 \(versions: 1, 2\)"):
        Model.get_model_path("m", 3)
    with pytest.raises(ModelNotFound, match="no model named 'other'"):
        Model.get_model_path("other")
    with pytest.raises(ValueError, match="invalid model name"):
        Model.get_model_path("../m")


def test_outside_a_step_register_model_names_the_sdk(monkeypatch):
    for variable in ("PIPESCHED_RUN_ID", ENV_MODELS_DIR):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(RuntimeError, match=r"scheduler\.sdk\.Model\.register"):
        Run.get_context().register_model("m", "model.pkl")


def test_model_lines_and_metric_lines_are_read_apart(tmp_path: Path):
    path = tmp_path / "metrics.jsonl"
    lines = [
        {"name": "acc", "kind": "scalar", "value": 0.9, "time": 1},
        {"name": "m", "kind": "model", "value": {"version": 3, "tags": {"a": 1}}, "time": 2},
        {"name": "bad", "kind": "model", "value": {"version": "3"}, "time": 3},
    ]
    text = "\n".join(json.dumps(line) for line in lines) + '\n{"name": "torn", "ki'
    path.write_text(text)
    assert [m["name"] for m in read_metrics_file(path)] == ["acc"]
    assert read_model_requests(path) == [
        {"name": "m", "version": 3, "tags": {"a": 1}, "properties": {}, "description": None}
    ]


def test_a_step_without_pipesched_installed_registers_a_model(tmp_path: Path):
    """The runtime a bare interpreter gets is the one file: registering needs nothing more."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    project = make_project(tmp_path)
    project.pipeline(
        "bare",
        f"""
        steps:
          s:
            type: python_script
            script: s.py
            environment: {{python: "{venv / "bin" / "python"}"}}
        """,
        {
            "s.py": """
            import os, sys
            from scheduler.runtime import Run
            os.makedirs("outputs", exist_ok=True)
            open("outputs/model.pkl", "w").write(sys.prefix)
            print(Run.get_context().register_model("bare-model", "outputs/model.pkl").id)
        """
        },
    )
    config, store = project.config(), project.store()
    pipeline = project.load("bare")
    run = submit_run(config, store, pipeline, {})
    executor = RunExecutor(
        config=config, store=store, pipeline=pipeline, run=run, options=ExecutionOptions()
    )
    asyncio.run(executor.execute())
    log = Path(store.get_run_detail(run.id).attempts[0].log_path).read_text()
    model = store.get_model("bare-model")
    assert "bare-model:1" in log and "registered model bare-model:1" in log
    assert (model.run_id, model.step) == (run.id, "s")
    assert model.path == str(models_root(config.default_datastore.path) / "bare-model/1/model.pkl")
    assert Path(model.path).read_text() == str(venv)
    store.close()
