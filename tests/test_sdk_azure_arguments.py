"""What the SDK does with Azure's arguments: honours them (``Schedule.update`` with Azure's
defaults, ``regenerate_outputs`` for published pipelines, embedded and over a real daemon's REST
path), accepts them with one warning each, or refuses them naming the method or argument and the
fix. Also: ``Schedule.create`` never fails after it stored the schedule, whatever state
schedules.yaml is in. Embedded workspaces over a real project and SQLite store; runs execute in
real child processes."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler.core.errors import DefinitionErrors
from scheduler.sdk import (
    CommandStep,
    DatabricksStep,
    DataPath,
    Dataset,
    DatasetConsumptionConfig,
    Experiment,
    IgnoredArgumentWarning,
    MpiConfiguration,
    ParallelRunConfig,
    ParallelRunStep,
    Pipeline,
    PipelineData,
    PipelineParameter,
    PipelineRun,
    PublishedPipeline,
    PythonScriptStep,
    Schedule,
    ScriptRunConfig,
    SdkError,
    Workspace,
)
from scheduler.sdk._warn import reset_warnings
from scheduler.sdk.datastore import Datastore
from scheduler.services.daemon_http import DaemonClient, socket_path
from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess
from tests.projects import Project
from tests.test_sdk_runtime_embedded import _project
from tests.test_sdk_schedule import weekly


@pytest.fixture(autouse=True)
def fresh_warnings() -> Iterator[None]:
    reset_warnings()
    yield
    reset_warnings()


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return _project(tmp_path)


@pytest.fixture
def ws(project: Project) -> Workspace:
    return Workspace(config=project.config_path)


def ignored_messages(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if w.category is IgnoredArgumentWarning]


def create_weekly(ws: Workspace, name: str = "weekly") -> Schedule:
    return Schedule.create(
        ws, name=name, pipeline_id="train", experiment_name="t", recurrence=weekly()
    )


def step_reuse(ws: Workspace, run: PipelineRun) -> list[str | None]:
    return [step["reused_from"] for step in ws._backend.get_run(run.id)["steps"]]


# -- Schedule.update --------------------------------------------------------------------------


def test_update_with_azures_defaults_disables_without_warning(ws: Workspace):
    schedule = create_weekly(ws)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        schedule.update(status="Disabled", wait_for_provisioning=False, wait_timeout=3600)
    assert ignored_messages(caught) == []
    assert schedule.status == "Disabled" and Schedule.get(ws, "weekly").status == "Disabled"


def test_update_refuses_an_unknown_status_naming_the_allowed_ones(ws: Workspace):
    schedule = create_weekly(ws)
    with pytest.raises(SdkError, match=r"status must be 'Active' or 'Disabled' \(got 'Paused'\)"):
        schedule.update(status="Paused")
    assert Schedule.get(ws, "weekly").status == "Active"


def test_update_waiting_for_provisioning_warns_once(ws: Workspace):
    schedule = create_weekly(ws)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        schedule.update(status="Disabled", wait_for_provisioning=True)
        schedule.update(status="Active", wait_for_provisioning=True)
    (message,) = ignored_messages(caught)
    assert "Schedule.update: argument 'wait_for_provisioning' is ignored" in message
    assert Schedule.get(ws, "weekly").status == "Active"


def test_an_update_refused_changes_nothing(ws: Workspace):
    schedule = create_weekly(ws)
    with pytest.raises(DefinitionErrors, match="unknown parameter 'no_such_parameter'"):
        schedule.update(pipeline_parameters={"no_such_parameter": 1}, status="Disabled")
    kept = Schedule.get(ws, "weekly")
    assert kept.status == "Active" and kept.recurrence.week_days == ["Monday"]


# -- refusals that name the right thing ------------------------------------------------------


@pytest.mark.parametrize(
    "method",
    ["register_azure_blob_container", "register_azure_file_share", "register_azure_data_lake_gen2"],
)
def test_register_methods_name_themselves(method: str):
    with pytest.raises(SdkError, match=f"argument '{method}' is not supported"):
        getattr(Datastore, method)(workspace=None, datastore_name="x")


def test_partition_keys_refusal_has_its_own_hint(ws: Workspace):
    files = Dataset.File.from_files(path=(ws.get_default_datastore(), "batches"))
    config = ParallelRunConfig(
        None, "score.py", 5, "append_row", "local", 1, partition_keys=["day"]
    )
    with pytest.raises(SdkError, match="partition_keys") as caught:
        ParallelRunStep(name="score", parallel_run_config=config, inputs=[files])
    assert "error_threshold" not in str(caught.value)
    assert "partition_by" in (caught.value.hint or "")


# -- Schedule.create never fails after it stored the schedule --------------------------------


def test_create_succeeds_when_schedules_yaml_is_broken(ws: Workspace, project: Project):
    project.schedules("schedules: [\n")  # a YAML syntax error
    schedule = create_weekly(ws)
    assert schedule.name == "weekly" and schedule.next_fire_times
    assert project.store().get_api_schedule("weekly").definition["pipeline"] == "train"


def test_create_succeeds_when_schedules_yaml_is_missing(ws: Workspace, project: Project):
    (project.root / "config" / "schedules.yaml").unlink()
    assert create_weekly(ws).status == "Active"
    assert project.store().get_api_schedule("weekly") is not None


def test_a_broken_schedules_yaml_is_reported_naming_the_file(ws: Workspace, project: Project):
    project.schedules("schedules: [\n")
    with pytest.raises(DefinitionErrors) as caught:
        Schedule.list(ws)
    assert "schedules.yaml" in str(caught.value)


# -- arguments that warn instead of vanishing ------------------------------------------------


def test_pipeline_submit_warns_for_each_unknown_keyword(ws: Workspace, project: Project):
    scripts = project.root / "notebook"
    scripts.mkdir()
    (scripts / "say.py").write_text("print('hi')\n")
    pipeline = Pipeline(ws, [PythonScriptStep("say.py", source_directory=str(scripts))])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = pipeline.submit("sdk-fixes", tags={"a": "b"}, show_output=True)
    assert run.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    messages = ignored_messages(caught)
    assert any("Pipeline.submit: argument 'tags' is ignored" in m for m in messages)
    assert any("Pipeline.submit: argument 'show_output' is ignored" in m for m in messages)


@pytest.mark.parametrize(
    "given", [{"mode": "download"}, {"path_on_compute": "/mnt/in"}, {"overwrite": True}]
)
def test_datastore_path_warns_for_compute_bindings(ws: Workspace, given: dict):
    (argument,) = given
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ws.get_default_datastore().path("inbox", **given)
    (message,) = ignored_messages(caught)
    assert f"DataReference: argument '{argument}' is ignored" in message
    assert caught[0].filename == __file__


def test_get_runs_warns_that_runs_carry_no_tags(ws: Workspace):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = list(Experiment(ws, "none").get_runs(tags={"a": "b"}, properties={"c": "d"}))
    assert runs == []
    messages = ignored_messages(caught)
    assert any("'tags' is ignored" in m for m in messages)
    assert any("'properties' is ignored" in m for m in messages)


def test_published_pipeline_regenerate_outputs_reuses_nothing(ws: Workspace, project: Project):
    data = ws._backend.publish(
        project.root / "pipelines" / "train", name="trainer", version="1", description=None
    )
    published = PublishedPipeline._from_json(ws, data)
    experiment = Experiment(ws, "regen")
    first = experiment.submit(published)
    assert first.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    again = experiment.submit(published)
    assert again.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    assert all(step_reuse(ws, again)), "a plain rerun reuses every step"
    fresh = experiment.submit(published, regenerate_outputs=True)
    assert fresh.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    assert step_reuse(ws, fresh) == [None, None]


def test_rest_regenerate_outputs_reaches_a_real_daemon(project: Project):
    ws = Workspace(config=project.config_path)
    ws._backend.publish(
        project.root / "pipelines" / "train", name="trainer", version="1", description=None
    )
    daemon = DaemonProcess(project).start()
    try:
        client = DaemonClient(socket_path(project.state_dir))
        path = "/api/v1/pipelines/trainer/versions/1/runs"

        def run(body: dict) -> PipelineRun:
            answer = client.post(path, {"ExperimentName": "rest-regen", **body})
            run = PipelineRun(Experiment(ws, "rest-regen"), answer["Id"])
            wait_until(lambda: run.get_status() in ("Finished", "Failed"), timeout=60)
            assert run.get_status() == "Finished"
            return run

        run({})
        assert all(step_reuse(ws, run({}))), "a plain rerun reuses every step"
        assert step_reuse(ws, run({"RegenerateOutputs": True})) == [None, None]
    finally:
        daemon.close()


# -- warnings and refusals of the other classes ----------------------------------------------


def test_workspace_get_warns_once_as_an_ignored_argument(project: Project, monkeypatch):
    monkeypatch.delenv("PIPESCHED_URL", raising=False)
    monkeypatch.setenv("PIPESCHED_CONFIG", str(project.config_path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Workspace.get("prod")
        Workspace.get("prod", subscription_id="sub")
    messages = [str(w.message) for w in caught]
    assert all(w.category is IgnoredArgumentWarning for w in caught)
    assert sum("Workspace.get: argument 'name'" in m for m in messages) == 1
    assert any("'subscription_id' is ignored" in m for m in messages)


def test_databricks_step_without_a_kind_names_all_four():
    with pytest.raises(SdkError) as caught:
        DatabricksStep(name="nothing")
    text = str(caught.value)
    for argument in (
        "notebook_path",
        "python_script_name",
        "python_script_path",
        "main_class_name",
    ):
        assert argument in text
    assert "none was given" in text


@pytest.mark.parametrize("make", [PipelineData, DataPath], ids=["PipelineData", "DataPath"])
def test_a_bad_datastore_type_names_the_class(make):
    with pytest.raises(SdkError, match=rf"{make.__name__}: argument 'datastore'"):
        make("x", datastore=42) if make is PipelineData else make(datastore=42)


@pytest.mark.parametrize(
    "config",
    [
        {"command": ["python train.py --epochs 3"]},  # Azure joins a list command into one line
        {"command": "python train.py --epochs 3"},
        {"script": "train.py", "arguments": ["--epochs", 3]},
    ],
    ids=["command-list", "command-line", "script-and-arguments"],
)
def test_a_command_step_runs_what_its_script_run_config_names(
    ws: Workspace, tmp_path: Path, config: dict
):
    source = tmp_path / "train-src"
    source.mkdir()
    (source / "train.py").write_text(
        "import sys\nfrom scheduler.runtime import Run\n"
        "Run.get_context().log('argv', ' '.join(sys.argv[1:]))\n"
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        step = CommandStep(
            name="train",
            runconfig=ScriptRunConfig(
                source_directory=str(source),
                compute_target="local",
                distributed_job_config=MpiConfiguration(node_count=2),
                **config,
            ),
        )
    assert ignored_messages(caught) == [
        "ScriptRunConfig: argument 'distributed_job_config' is ignored on pipesched "
        "(a step runs as one process on its compute target)"
    ]
    run = Experiment(ws, "script-run-config").submit(Pipeline(workspace=ws, steps=[step]))
    assert run.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    assert run.find_step_run("train")[0].get_metrics() == {"argv": "--epochs 3"}


def test_a_dataset_parameter_reads_by_its_consumption_name_and_a_reused_step_keeps_its_log(
    ws: Workspace, project: Project, tmp_path: Path
):
    (project.datastore / "demo").mkdir(parents=True)
    (project.datastore / "demo" / "a.csv").write_text("x\n1\n")
    source = tmp_path / "reader"
    source.mkdir()
    (source / "read.py").write_text(
        "from scheduler.runtime import Run\n"
        "path = Run.get_context().input_datasets['file_dataset']\n"
        "print('read:', open(path).read().splitlines()[-1])\n"
    )
    dataset = Dataset.File.from_files("datastore://default/demo/a.csv")
    assert dataset.id == "datastore://default/demo/a.csv"
    parameter = PipelineParameter(name="file_ds_param", default_value=dataset)
    consumed = DatasetConsumptionConfig("file_dataset", parameter)
    step = PythonScriptStep(
        name="read", script_name="read.py", source_directory=str(source), inputs=[consumed]
    )
    pipeline = Pipeline(workspace=ws, steps=[step])
    first = Experiment(ws, "aliases").submit(pipeline)
    assert first.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    again = Experiment(ws, "aliases").submit(pipeline)
    assert again.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    (reused,) = again.find_step_run("read")
    assert step_reuse(ws, again) == [first.id]
    assert "read: 1" in reused.get_job_log()
