"""The SDK's runtime on an embedded workspace (a config file, no daemon): a submitted pipeline
folder runs in a real child process, and PipelineRun/StepRun read it back from the real SQLite
store. Pipelines are driven through the backend from a folder, as Pipeline.submit does after
saving one."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest

from scheduler.core.errors import ParameterError, PipeschedError
from scheduler.sdk import Experiment, PipelineRun, Workspace
from scheduler.sdk._warn import SdkError
from tests.conftest import wait_until
from tests.projects import Project, make_project

TRAIN = """
experiment: training
parameters:
  reg: {type: float, default: 0.1}
data:
  prepped: {datastore: default}
steps:
  prep:
    type: python_script
    display_name: Prepare Data
    script: prep.py
    arguments: [--out, "${{data.prepped}}"]
    outputs: [prepped]
  train:
    type: python_script
    display_name: Train Model
    script: train.py
    arguments: [--in, "${{data.prepped}}", --reg, "${{parameters.reg}}"]
    inputs: [prepped]
"""
SCRIPTS = {
    "prep.py": """
        import argparse, pathlib
        from scheduler.runtime import Run
        args = argparse.ArgumentParser()
        args.add_argument("--out")
        out = pathlib.Path(args.parse_args().out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "rows.csv").write_text("1\\n2\\n3\\n")
        Run.get_context().log("rows", 3)
        print("prepared 3 rows", flush=True)
    """,
    "train.py": """
        import argparse, pathlib
        from scheduler.runtime import Run
        parser = argparse.ArgumentParser()
        parser.add_argument("--in", dest="src")
        parser.add_argument("--reg", type=float)
        args = parser.parse_args()
        rows = len((pathlib.Path(args.src) / "rows.csv").read_text().split())
        Run.get_context().log("reg", args.reg)
        Run.get_context().log("accuracy", 0.9)
        print(f"trained on {rows} rows with reg {args.reg}", flush=True)
    """,
}
WAITER = """
steps:
  wait: {type: python_script, script: wait.py}
"""
WAIT_SCRIPT = {
    "wait.py": """
        import time
        print("waiting", flush=True)
        time.sleep(60)
    """
}
FAILING = """
steps:
  boom: {type: python_script, script: boom.py}
"""


def _project(root: Path) -> Project:
    project = make_project(root)
    project.pipeline("train", TRAIN, SCRIPTS)
    project.pipeline("waiter", WAITER, WAIT_SCRIPT)
    project.pipeline("failing", FAILING, {"boom.py": "raise SystemExit('boom')\n"})
    return project


def _submit(ws: Workspace, project: Project, name: str, **parameters) -> PipelineRun:
    folder = project.root / "pipelines" / name
    run_id = ws._backend.submit(folder, experiment=f"exp-{name}", parameters=parameters)
    return PipelineRun(Experiment(ws, f"exp-{name}"), run_id)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, Workspace, PipelineRun]:
    """One completed run of ``train`` that the read-only tests share."""
    project = _project(tmp_path_factory.mktemp("sdk-embedded"))
    ws = Workspace(config=project.config_path)
    run = _submit(ws, project, "train", reg=0.5)
    assert run.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    return project, ws, run


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return _project(tmp_path)


def test_submitted_run_is_listed_by_the_cli_as_manual(finished):
    project, _, run = finished
    listed = json.loads(project.cli("runs", "--json").stdout)
    (mine,) = [r for r in listed if r["id"] == run.id]
    assert mine["trigger"] == "manual" and mine["experiment"] == "exp-train"
    assert mine["status"] == "completed"


def test_run_reads_status_and_metrics_from_the_store(finished):
    _, _, run = finished
    assert run.get_status() == "Finished" and run.status == "Finished"
    assert run.get_metrics() == {"rows": 3, "reg": 0.5, "accuracy": 0.9}
    assert run.get_metrics(recursive=True) == {
        f"{run.id}/prep": {"rows": 3},
        f"{run.id}/train": {"reg": 0.5, "accuracy": 0.9},
    }


def test_steps_are_step_runs_in_pipeline_order(finished):
    _, _, run = finished
    steps = run.get_steps()
    assert [s.name for s in steps] == ["Prepare Data", "Train Model"]
    assert [s.id for s in steps] == [f"{run.id}/prep", f"{run.id}/train"]
    assert steps[1].get_status() == "Finished"


def test_find_step_run_takes_display_name_or_step_id(finished):
    _, _, run = finished
    (by_name,) = run.find_step_run("Train Model")
    (by_id,) = run.find_step_run("train")
    assert by_name.id == by_id.id
    assert by_name.get_metrics() == {"reg": 0.5, "accuracy": 0.9}
    assert run.find_step_run("nope") == []


def test_step_log_is_the_step_output(finished):
    _, _, run = finished
    (train,) = run.find_step_run("train")
    assert "trained on 3 rows with reg 0.5" in train.get_job_log()


def test_details_carry_azure_keys_and_ours(finished):
    _, _, run = finished
    details = run.get_details()
    assert details["runId"] == run.id and details["status"] == "Finished"
    assert details["startTimeUtc"] and details["endTimeUtc"]
    assert details["parameters"] == {"reg": 0.5}
    assert [s["name"] for s in details["steps"]] == ["prep", "train"]


def test_output_data_downloads_a_copy(finished, tmp_path: Path):
    _, _, run = finished
    (prep,) = run.find_step_run("prep")
    output = prep.get_output_data("prepped")
    assert output.path_on_datastore == f".pipesched/outputs/{run.id}/prep/prepped"
    assert output.datastore_name == "default"
    copied = Path(output.download(str(tmp_path)))
    assert (copied / "rows.csv").read_text() == "1\n2\n3\n"


def test_experiment_lists_its_runs(finished):
    _, ws, run = finished
    assert [r.id for r in Experiment(ws, "exp-train").get_runs()] == [run.id]
    assert "exp-train" in ws.experiments
    assert PipelineRun(Experiment(ws, "exp-train"), run.id[:6]).id.startswith(run.id[:6])


def test_show_output_prints_each_step_log(project: Project, capsys):
    ws = Workspace(config=project.config_path)
    run = _submit(ws, project, "train", reg=0.25)
    assert run.wait_for_completion(show_output=True, timeout_seconds=60) == "Finished"
    shown = capsys.readouterr().out
    assert f"StepRunId: {run.id}/prep" in shown and f"StepRunId: {run.id}/train" in shown
    assert shown.index("prepared 3 rows") < shown.index("trained on 3 rows with reg 0.25")
    assert shown.rstrip().endswith("PipelineRun Status: Finished")


def test_bad_parameter_raises_before_anything_is_recorded(project: Project):
    ws = Workspace(config=project.config_path)
    with pytest.raises(ParameterError) as caught:
        _submit(ws, project, "train", reg="lots")
    assert caught.value.name == "reg"
    assert "parameter 'reg' must be a number" in str(caught.value)
    assert json.loads(project.cli("runs", "--json").stdout) == []


def test_failed_run_raises_activity_failed(project: Project):
    from scheduler.sdk.runs import ActivityFailedException

    ws = Workspace(config=project.config_path)
    run = _submit(ws, project, "failing")
    with pytest.raises(ActivityFailedException, match=f"run {run.id} failed"):
        run.wait_for_completion(show_output=False, timeout_seconds=60)
    assert run.wait_for_completion(show_output=False, raise_on_error=False) == "Failed"


def test_cancel_ends_the_run_and_its_process(project: Project):
    ws = Workspace(config=project.config_path)
    run = _submit(ws, project, "waiter")
    (step,) = run.get_steps()
    wait_until(lambda: "waiting" in step.get_job_log(), timeout=30)
    owner = project.store().get_run(run.id).owner
    assert os.getsid(owner.pid) != os.getsid(0)  # its own session: outlives a kernel's Ctrl-C
    run.cancel()
    assert run.get_status() == "Canceled"
    # Reaped, not left a zombie: /proc/PID goes away.
    wait_until(lambda: not Path(f"/proc/{owner.pid}").exists(), timeout=15)


def test_published_version_runs_through_the_child(project: Project):
    from scheduler.sdk import PipelineEndpoint, PublishedPipeline

    ws = Workspace(config=project.config_path)
    data = ws._backend.publish(
        project.root / "pipelines" / "train", name="trainer", version="7", description="d"
    )
    published = PublishedPipeline._from_json(ws, data)
    assert published.id == "trainer@7"
    assert published.endpoint.endswith("/api/v1/pipelines/trainer/versions/7/runs")
    assert PublishedPipeline.get(ws, "trainer@7").description == "d"
    run = published.submit(ws, "scored", pipeline_parameters={"reg": 0.75})
    assert run.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    assert run.get_details()["version"] == "7" and run.get_metrics()["reg"] == 0.75
    endpoint = PipelineEndpoint.get(ws, name="trainer")
    assert endpoint.default_version == "0"  # the endpoint's own numbering
    assert endpoint.get_pipeline().id == "trainer@7"


def test_from_config_takes_a_project_folder(project: Project):
    ws = Workspace.from_config(path=str(project.root))
    assert ws._config is not None and ws._config.file == project.config_path
    assert ws.get_default_datastore().local_path == project.datastore.resolve()


def test_from_config_follows_the_cli_search(project: Project, monkeypatch):
    monkeypatch.delenv("PIPESCHED_URL", raising=False)
    monkeypatch.setenv("PIPESCHED_CONFIG", str(project.config_path))
    assert Workspace.from_config()._config.file == project.config_path


def test_an_azure_config_json_is_refused_with_the_fix(tmp_path: Path):
    azure = tmp_path / "config.json"
    azure.write_text('{"subscription_id": "x", "resource_group": "y", "workspace_name": "z"}')
    with pytest.raises(SdkError, match="Azure ML workspace config") as caught:
        Workspace.from_config(path=str(azure))
    assert "pipesched.yaml" in str(caught.value)


def test_azure_identity_arguments_warn(project: Project):
    from scheduler.sdk._warn import IgnoredArgumentWarning, reset_warnings

    reset_warnings()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Workspace("sub", "rg", "ws", config=project.config_path)
    ignored = [str(w.message) for w in caught if w.category is IgnoredArgumentWarning]
    assert any("'subscription_id' is ignored" in text for text in ignored)
    assert any("'resource_group' is ignored" in text for text in ignored)


def test_unknown_run_id_is_not_found(project: Project):
    ws = Workspace(config=project.config_path)
    with pytest.raises(PipeschedError):
        PipelineRun(Experiment(ws, "x"), "zzzzzz").get_status()
