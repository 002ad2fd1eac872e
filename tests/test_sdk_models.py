"""Azure ML's ``Model`` and ``run.register_model`` on pipesched, as a notebook uses them: on an
embedded workspace (a real SQLite store in tmp_path, runs in real child processes) and through
a real daemon's REST API (``Workspace(url=, token=)``). Steps register models the way Azure
step scripts do, and a later step loads one with ``Model.get_model_path``."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler.core.errors import NotFound, PipeschedError
from scheduler.sdk import Experiment, Model, PipelineRun, Workspace
from scheduler.sdk._warn import IgnoredArgumentWarning, SdkError
from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess
from tests.model_projects import model_file, model_project
from tests.projects import Project


def submit(ws: Workspace, project: Project, pipeline: str, **parameters) -> PipelineRun:
    folder = project.root / "pipelines" / pipeline
    run_id = ws._backend.submit(folder, experiment=pipeline, parameters=parameters)
    run = PipelineRun(Experiment(ws, pipeline), run_id)
    assert run.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    return run


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, Workspace]:
    project = model_project(tmp_path_factory.mktemp("models-embedded"))
    return project, Workspace(config=project.config_path)


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, Workspace]]:
    """A real daemon over the same kind of project, and a workspace on its URL."""
    project = model_project(tmp_path_factory.mktemp("models-remote"))
    daemon = DaemonProcess(project).start()
    try:
        (listening,) = wait_until(lambda: daemon.events("api_listening"), timeout=15)
        created = project.cli("token", "create", "models")
        assert created.returncode == 0, created.stderr
        token = created.stdout.strip().splitlines()[-1]
        yield project, Workspace(url=listening["url"], token=token)
    finally:
        daemon.close()


@pytest.fixture(params=["embedded", "remote"])
def workspace(request: pytest.FixtureRequest) -> tuple[Project, Workspace]:
    return request.getfixturevalue(request.param)


def unique(name: str, request: pytest.FixtureRequest) -> str:
    """A model name of this test's own: the workspaces are shared by the module's tests."""
    return f"{name}-{request.node.callspec.params['workspace']}"


# -- from a notebook --------------------------------------------------------------------------------


def test_register_gives_versions_one_two_three(workspace, tmp_path, request, capsys):
    _, ws = workspace
    name = unique("diabetes", request)
    source = model_file(tmp_path, content="ridge v1")
    first = Model.register(
        ws,
        model_path=str(source),
        model_name=name,
        tags={"area": "diabetes", "type": "regression"},
        properties={"mse": "3278.41"},
        description="Ridge regression model to predict diabetes",
    )
    assert f"Registering model {name}" in capsys.readouterr().out
    source.write_text("ridge v2")
    second = Model.register(ws, str(source), name)
    third = Model.register(ws, str(source), name, tags={"area": "diabetes"})
    assert [m.version for m in (first, second, third)] == [1, 2, 3]
    assert (first.name, first.id) == (name, f"{name}:1")
    assert first.tags == {"area": "diabetes", "type": "regression"}
    assert first.properties == {"mse": "3278.41"}
    assert first.description == "Ridge regression model to predict diabetes"
    assert first.run_id is None and first.path.endswith(f"/models/{name}/1/model.pkl")
    assert Model(ws, name).version == 3
    assert Model(ws, name, version=1).description == first.description
    assert Model(ws, id=f"{name}:2").version == 2
    assert Model(ws, name, tags=[["type", "regression"]]).version == 1


def test_a_registered_version_keeps_what_was_registered(workspace, tmp_path, request):
    _, ws = workspace
    name = unique("kept", request)
    source = model_file(tmp_path, content="as registered")
    model = Model.register(ws, str(source), name)
    source.write_text("changed since")
    target = tmp_path / "downloaded"
    path = model.download(target_dir=str(target))
    assert Path(path) == target / "model.pkl"
    assert Path(path).read_text() == "as registered"


def test_download_refuses_to_replace_unless_exist_ok(workspace, tmp_path, request):
    _, ws = workspace
    model = Model.register(ws, str(model_file(tmp_path, content="v1")), unique("dl", request))
    target = tmp_path / "out"
    model.download(str(target))
    with pytest.raises(PipeschedError, match="exists"):
        model.download(str(target))
    (target / "model.pkl").write_text("local edit")
    assert Path(model.download(str(target), exist_ok=True)).read_text() == "v1"


def test_a_folder_model_is_registered_and_downloaded_whole(workspace, tmp_path, request):
    _, ws = workspace
    folder = tmp_path / "models"
    (folder / "assets").mkdir(parents=True)
    (folder / "saved_model.pb").write_text("graph")
    (folder / "assets" / "vocab.txt").write_text("a b")
    model = Model.register(ws, str(folder) + "/", unique("mnist-prs", request))
    copy = Path(model.download(str(tmp_path / "copy")))
    assert copy == tmp_path / "copy" / "models"
    assert (copy / "saved_model.pb").read_text() == "graph"
    assert (copy / "assets" / "vocab.txt").read_text() == "a b"


def test_list_filters_as_azure_does(workspace, tmp_path, request):
    _, ws = workspace
    a, b = unique("list-a", request), unique("list-b", request)
    source = str(model_file(tmp_path))
    Model.register(ws, source, a, tags={"stage": "dev"})
    Model.register(ws, source, a, tags={"stage": "prod", "owner": "me"})
    Model.register(ws, source, b, tags={"stage": "prod"})
    mine = {a, b}
    ids = lambda models: [m.id for m in models if m.name in mine]  # noqa: E731
    assert ids(Model.list(ws)) == [f"{a}:2", f"{a}:1", f"{b}:1"]
    assert ids(Model.list(ws, name=a)) == [f"{a}:2", f"{a}:1"]
    assert ids(Model.list(ws, tags=[["stage", "prod"]])) == [f"{a}:2", f"{b}:1"]
    assert ids(Model.list(ws, tags=["owner"])) == [f"{a}:2"]
    assert ids(Model.list(ws, latest=True)) == [f"{a}:2", f"{b}:1"]


def test_unknown_models_are_not_found(workspace, request):
    _, ws = workspace
    with pytest.raises(NotFound, match="no model named"):
        Model(ws, unique("ghost", request))
    Model.register(ws, __file__, unique("one", request))
    with pytest.raises(NotFound, match="has no version 5"):
        Model(ws, unique("one", request), version=5)


def test_a_bad_name_is_refused_before_anything_is_copied(workspace, tmp_path):
    _, ws = workspace
    with pytest.raises(PipeschedError, match="invalid model name"):
        Model.register(ws, str(model_file(tmp_path)), "../outside")
    assert not [m for m in Model.list(ws) if "outside" in m.name]


def test_azure_only_arguments_warn_and_serving_is_refused(embedded, tmp_path):
    _, ws = embedded
    with pytest.warns(IgnoredArgumentWarning, match="model_framework"):
        model = Model.register(
            ws, str(model_file(tmp_path)), "framework-model", model_framework="ScikitLearn"
        )
    with pytest.raises(SdkError, match="child_paths") as refused:
        Model.register(ws, str(tmp_path), "children", child_paths=["a.pkl"])
    assert "register that folder" in str(refused.value)
    with pytest.raises(SdkError, match=r"Model\.deploy") as serving:
        Model.deploy(ws, "service", [model])
    assert "Model.get_model_path" in str(serving.value)


# -- from runs and steps ----------------------------------------------------------------------------


def test_a_step_registers_a_model_the_next_step_loads(workspace):
    project, ws = workspace
    run = submit(ws, project, "train-and-score", reg=0.25)
    registered = [m for m in Model.list(ws, name="diabetes-model") if m.run_id == run.id]
    (model,) = registered
    assert (model.step, model.tags, model.description) == (
        "train",
        {"area": "diabetes", "reg": 0.25},
        "Ridge regression",
    )
    (train,) = run.find_step_run("train")
    assert f"registered diabetes-model:{model.version} version {model.version}" in (
        train.get_job_log()
    )
    (score,) = run.find_step_run("score")
    # The step changed its file after registering: the version kept what was registered.
    assert f"scoring with ridge reg=0.25 from {model.path}" in score.get_job_log()


def test_a_step_registers_with_the_azure_workspace_call(workspace):
    project, ws = workspace
    run = submit(ws, project, "azure-style")
    (model,) = [m for m in Model.list(ws, name="tf-dnn-mnist") if m.run_id == run.id]
    assert model.step == "register" and model.path.endswith(f"/{model.version}/model")


def test_a_run_registers_a_file_its_step_made(workspace, tmp_path, request):
    project, ws = workspace
    run = submit(ws, project, "train-only")
    name = unique("from-run", request)
    by_pipeline_run = run.register_model(name, model_path="outputs/model.pkl", tags={"k": "v"})
    (train,) = run.find_step_run("train")
    by_step_run = train.register_model(name, "outputs/model.pkl", description="again")
    assert (by_pipeline_run.version, by_step_run.version) == (1, 2)
    assert {(m.run_id, m.step) for m in (by_pipeline_run, by_step_run)} == {(run.id, "train")}
    assert by_pipeline_run.tags == {"k": "v"} and by_step_run.description == "again"
    assert Path(by_pipeline_run.download(str(tmp_path))).read_text() == "trained in a run"
    with pytest.raises(NotFound, match=r"has no outputs/missing\.pkl") as missing:
        run.register_model(name, model_path="outputs/missing.pkl")
    assert "relative to a step's working folder" in str(missing.value)
    (report,) = run.find_step_run("report")
    with pytest.raises(NotFound, match="step 'report'"):
        report.register_model(name, "outputs/model.pkl")


def test_get_model_path_outside_a_step_uses_the_workspace(
    workspace, tmp_path, request, monkeypatch
):
    _, ws = workspace
    name = unique("path", request)
    Model.register(ws, str(model_file(tmp_path, content="one")), name)
    Model.register(ws, str(model_file(tmp_path, content="two")), name)
    monkeypatch.chdir(tmp_path)
    latest = Model.get_model_path(name, _workspace=ws)
    assert Path(latest).read_text() == "two"
    assert Path(Model.get_model_path(name, version=1, _workspace=ws)).read_text() == "one"
    if request.node.callspec.params["workspace"] == "remote":
        # Downloaded to Azure's local cache, which later calls without a workspace read.
        assert Path(latest).resolve() == tmp_path / "azureml-models" / name / "2" / "model.pkl"
        assert Path(Model.get_model_path(name)).read_text() == "two"
    with pytest.raises(NotFound, match="_workspace=ws"):
        Model.get_model_path(unique("nowhere", request))


def test_the_cli_lists_what_the_sdk_registered(embedded, tmp_path):
    project, ws = embedded
    model = Model.register(ws, str(model_file(tmp_path)), "cli-visible", tags={"a": "b"})
    listed = json.loads(project.cli("models", "--json", "--name", "cli-visible").stdout)
    assert listed == [model._data]


def test_a_reused_step_registers_the_files_of_the_run_it_reused(embedded):
    project, ws = embedded
    first = submit(ws, project, "train-only")
    again = submit(ws, project, "train-only")
    (train,) = again.find_step_run("train")
    assert train.get_details()["pipeschedStatus"] == "reused"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = again.register_model("reused", "outputs/model.pkl", model_framework="ScikitLearn")
    assert any("model_framework" in str(w.message) for w in caught)
    assert (model.run_id, model.step) == (again.id, "train")
    assert first.id != again.id and Path(model.path).read_text() == "trained in a run"
