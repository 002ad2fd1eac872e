"""``Pipeline.save(folder)``: a pipeline.yaml plus source directories that ``pipesched validate``
accepts, that loads into the same definition as the in-memory pipeline, and that runs identically
(same reuse fingerprints, same outputs). Real CLI subprocesses, real executor, real SQLite."""

from __future__ import annotations

import asyncio
import json
import shutil
import types
from pathlib import Path

import pytest
import yaml

from scheduler.definitions import load_pipeline
from scheduler.dispatch.submit import submit_run
from scheduler.executor import ExecutionOptions, RunExecutor
from scheduler.sdk import (
    Dataset,
    Pipeline,
    PipelineData,
    PipelineParameter,
    PythonScriptStep,
    SdkError,
)
from scheduler.sdk.datastore import Datastore
from tests.projects import Project, make_project

SCRIPTS = Path(__file__).parent / "sdk_notebook"
NAME = "diabetes-sdk"


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = make_project(tmp_path / "home")
    shutil.copytree(SCRIPTS, project.root / "notebook" / "scripts")
    raw = project.datastore / "diabetes-data"
    raw.mkdir(parents=True)
    (raw / "a.csv").write_text("1,2\n3,4\n")
    (raw / "b.csv").write_text("5,6\n")
    return project


@pytest.fixture
def ws(project: Project):
    workspace = types.SimpleNamespace(_config=project.config(), _backend=None)
    workspace.get_default_datastore = lambda: Datastore(workspace, "default")
    return workspace


def training_pipeline(ws, scripts: Path) -> Pipeline:
    store = ws.get_default_datastore()
    raw = Dataset.File.from_files(path=(store, "diabetes-data"))
    prepped = PipelineData("prepped_data", datastore=store)
    reg = PipelineParameter(name="reg_rate", default_value=0.01)
    prep = PythonScriptStep(
        name="Prepare Data",
        source_directory=str(scripts),
        script_name="prep.py",
        arguments=["--input-data", raw.as_named_input("raw_data"), "--prepped-data", prepped],
        outputs=[prepped],
    )
    train = PythonScriptStep(
        name="Train Model",
        source_directory=str(scripts),
        script_name="train.py",
        arguments=["--training-data", prepped, "--reg", reg],
        inputs=[prepped],
    )
    return Pipeline(workspace=ws, steps=[prep, train])


@pytest.fixture
def pipeline(ws, project: Project) -> Pipeline:
    return training_pipeline(ws, project.root / "notebook" / "scripts")


def execute(project: Project, definition) -> dict:
    """Run a definition through the embedded executor (as tests/test_executor.py does)."""
    config, store = project.config(), project.store()
    run = submit_run(config, store, definition, {})
    executor = RunExecutor(
        config=config,
        store=store,
        pipeline=definition,
        run=run,
        options=ExecutionOptions(kill_grace=0.5),
    )
    asyncio.run(executor.execute())
    return store.get_run_detail(run.id).to_json()


def run_saved(project: Project, *args: str) -> dict:
    ran = project.cli("run", NAME, "--json", *args)
    assert ran.returncode == 0, ran.stderr
    return json.loads(ran.stdout)


def saved_folder(project: Project) -> Path:
    return project.root / "pipelines" / NAME


def test_saved_yaml_loads_to_the_same_definition(pipeline: Pipeline, project: Project):
    folder = pipeline.save(saved_folder(project))
    saved = load_pipeline(folder, project.config())
    assert saved.definition_dict() == pipeline.definition(name=NAME).definition_dict()


def test_pipesched_validate_accepts_the_saved_folder(pipeline: Pipeline, project: Project):
    pipeline.save(saved_folder(project))
    checked = project.cli("validate", "-c", str(project.config_path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_saved_pipeline_has_the_in_memory_fingerprints(pipeline: Pipeline, project: Project):
    in_memory = execute(project, pipeline.definition(name=NAME))
    assert in_memory["status"] == "completed"
    pipeline.save(saved_folder(project))
    from_yaml = run_saved(project)
    # Reuse matches on the fingerprint alone: equal fingerprints make every step reused.
    assert [s["reused_from"] for s in from_yaml["steps"]] == [in_memory["id"]] * 2


def test_saved_pipeline_produces_the_same_outputs(pipeline: Pipeline, project: Project):
    in_memory = execute(project, pipeline.definition(name=NAME))
    pipeline.save(saved_folder(project))
    from_yaml = run_saved(project, "--regenerate-outputs")
    assert [s["status"] for s in from_yaml["steps"]] == ["completed", "completed"]
    assert {s["name"]: s["metrics"] for s in from_yaml["steps"]} == {
        s["name"]: s["metrics"] for s in in_memory["steps"]
    }
    outputs = [
        Path(run["steps"][0]["outputs"]["prepped_data"], "prepped.csv").read_text()
        for run in (in_memory, from_yaml)
    ]
    assert outputs[0] == outputs[1] == "1,2\n3,4\n5,6\n"


def test_save_refuses_a_folder_it_did_not_write(pipeline: Pipeline, project: Project):
    folder = saved_folder(project)
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(SdkError, match="did not write"):
        pipeline.save(folder)
    assert (folder / "notes.txt").read_text() == "mine"


def test_save_replaces_an_earlier_save(pipeline: Pipeline, project: Project):
    folder = pipeline.save(saved_folder(project))
    (folder / "scripts" / "stale.py").write_text("")
    pipeline.save(folder)
    assert not (folder / "scripts" / "stale.py").exists()
    assert (folder / "scripts" / "prep.py").is_file()


def test_steps_sharing_a_source_directory_share_one_filtered_copy(ws, project: Project):
    scripts = project.root / "notebook" / "scripts"
    (scripts / ".gitignore").write_text("*.tmp\n")
    (scripts / "scratch.tmp").write_text("big")
    extra = project.root / "notebook" / "extra"
    extra.mkdir()
    (extra / "score.py").write_text("print('x')\n")
    pipeline = training_pipeline(ws, scripts)
    scorer = PythonScriptStep("score.py", name="score", source_directory=str(extra))
    pipeline._steps.append(scorer)
    folder = pipeline.save(saved_folder(project))
    copied = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert copied == [
        "extra/score.py",
        "pipeline.yaml",
        "scripts/.gitignore",
        "scripts/prep.py",
        "scripts/score.py",
        "scripts/train.py",
    ]


def test_saved_yaml_keeps_only_what_differs_from_defaults(pipeline: Pipeline, project: Project):
    folder = pipeline.save(saved_folder(project))
    text = (folder / "pipeline.yaml").read_text()
    data = yaml.safe_load(text)
    assert "name" not in data  # the folder's name
    assert data["steps"]["prepare-data"] == {
        "type": "python_script",
        "display_name": "Prepare Data",
        "source_directory": "scripts",
        "script": "prep.py",
        "arguments": [
            "--input-data",
            "${{parameters.raw_data}}",
            "--prepped-data",
            "${{data.prepped_data}}",
        ],
        "outputs": ["prepped_data"],
    }


def test_load_yaml_gives_a_pipeline_of_the_saved_definition(ws, pipeline: Pipeline, project):
    folder = pipeline.save(saved_folder(project))
    loaded = Pipeline.load_yaml(ws, folder / "pipeline.yaml")
    assert loaded.validate() == []
    assert loaded.definition().definition_dict() == load_pipeline(folder, None).definition_dict()


class RecordingBackend:
    """Stands in for C2's backends at the one seam this module owns: what submit hands over."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def submit(self, folder: Path, **kwargs) -> str:
        self.calls.append({"yaml": (folder / "pipeline.yaml").read_text(), **kwargs})
        assert load_pipeline(folder, None).name == "weekly-training"
        return "run-1"


def test_submit_hands_a_saved_folder_and_plain_parameters_to_the_backend(ws, pipeline):
    from scheduler.sdk import DataPath

    ws._backend = RecordingBackend()
    store = ws.get_default_datastore()
    run_id = pipeline._submit_to(
        "weekly training", {"raw_data": DataPath(store, "other"), "reg_rate": 0.2}, True, None
    )
    (call,) = ws._backend.calls
    assert run_id == "run-1"
    assert call["parameters"] == {"raw_data": "datastore://default/other", "reg_rate": 0.2}
    assert call["experiment"] == "weekly training" and call["regenerate_outputs"] is True


def test_without_a_local_config_compute_names_are_left_to_the_daemon(ws, project: Project):
    remote = types.SimpleNamespace(_config=None, _backend=None)
    remote.get_default_datastore = ws.get_default_datastore
    scripts = project.root / "notebook" / "scripts"
    step = PythonScriptStep("prep.py", source_directory=scripts, compute_target="gpu-box")
    assert Pipeline(remote, [step]).validate() == []
