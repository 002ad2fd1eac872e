"""A notebook's first cells as Azure ML's notebooks write them: the workspace's identity printed,
the SDK version, compute targets found (or created) as objects, and the authentication objects
whose header calls a published pipeline's endpoint. Each runs embedded (a real config and
SQLite store in tmp_path) and through a real daemon's REST API.

The ``*_CELLS`` below are cells of public Azure ML sample notebooks copied cell for cell; only
their imports are changed (``azureml.core.VERSION`` becomes ``scheduler.sdk.VERSION`` with the
import; the widgets import is left out, as these cells do not use it)."""

from __future__ import annotations

import json
import re
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

import scheduler
from scheduler.sdk import (
    DEFAULT_CPU_IMAGE,
    DEFAULT_GPU_IMAGE,
    VERSION,
    AmlCompute,
    ComputeTarget,
    ComputeTargetException,
    Experiment,
    IgnoredArgumentWarning,
    InteractiveLoginAuthentication,
    MsiAuthentication,
    Pipeline,
    PipelineParameter,
    PipelineRun,
    PythonScriptStep,
    RunConfiguration,
    SdkError,
    ServicePrincipalAuthentication,
    Workspace,
)
from scheduler.sdk._warn import reset_warnings
from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess
from tests.projects import Project, make_project

ZERO_GUID = "00000000-0000-0000-0000-000000000000"
COMPUTE = {
    "local": {"type": "local", "max_workers": 4},
    "cpu-cluster": {"type": "local", "max_workers": 2},
    # Never connected to: a Dask target is only reached when a step runs on it.
    "gpu-cluster": {"type": "dask", "address": "tcp://127.0.0.1:9", "max_workers": 8},
}

# aml-pipelines-getting-started.ipynb, its first code cells.
GETTING_STARTED_CELLS = [
    """
import scheduler.sdk
from scheduler.sdk import Workspace, Experiment, Datastore
from scheduler.sdk import AmlCompute
from scheduler.sdk import ComputeTarget

# Check core SDK version number
print("SDK version:", scheduler.sdk.VERSION)
""",
    """
from scheduler.sdk import Pipeline
from scheduler.sdk import PythonScriptStep

print("Pipeline SDK-specific imports completed")
""",
    """
ws = Workspace.from_config()
print(ws.name, ws.resource_group, ws.location, ws.subscription_id, sep = '\\n')

# Default datastore (Azure file storage)
def_file_store = ws.get_default_datastore()
# The above call is equivalent to Datastore(ws, "workspacefilestore") or simply Datastore(ws)
print("Default datastore's name: {}".format(def_file_store.name))

# Blob storage associated with the workspace
# The following call GETS the Azure Blob Store associated with your workspace.
# Note that workspaceblobstore is **the name of this store and CANNOT BE CHANGED and must be used as is**
def_blob_store = Datastore(ws, "workspaceblobstore")
print("Blobstore's name: {}".format(def_blob_store.name))
""",
    """
cts = ws.compute_targets
for ct in cts:
    print(ct)
""",
    """
from scheduler.sdk import ComputeTargetException

aml_compute_target = "aml-compute"
try:
    aml_compute = AmlCompute(ws, aml_compute_target)
    print("found existing compute target.")
except ComputeTargetException:
    print("creating new compute target")

    provisioning_config = AmlCompute.provisioning_configuration(vm_size = "STANDARD_D2_V2",
                                                                min_nodes = 1,
                                                                max_nodes = 4)
    aml_compute = ComputeTarget.create(ws, aml_compute_target, provisioning_config)
    aml_compute.wait_for_completion(show_output=True, min_node_count=None, timeout_in_minutes=20)

print("Azure Machine Learning Compute attached")
""",
]

# aml-pipelines-publish-and-run-using-rest-endpoint.ipynb, its first code cells.
PUBLISH_AND_RUN_CELLS = [
    """
import scheduler.sdk
from scheduler.sdk import Workspace, Datastore, Experiment, Dataset
from scheduler.sdk import OutputFileDatasetConfig
from scheduler.sdk import AmlCompute
from scheduler.sdk import ComputeTarget

# Check core SDK version number
print("SDK version:", scheduler.sdk.VERSION)

from scheduler.sdk import Pipeline
from scheduler.sdk import PythonScriptStep
from scheduler.sdk import PipelineParameter

print("Pipeline SDK-specific imports completed")

ws = Workspace.from_config()
print(ws.name, ws.resource_group, ws.location, ws.subscription_id, sep = '\\n')

# Default datastore (Azure blob storage)
# def_blob_store = ws.get_default_datastore()
def_blob_store = Datastore(ws, "workspaceblobstore")
print("Blobstore's name: {}".format(def_blob_store.name))
""",
    """
from scheduler.sdk import ComputeTargetException

aml_compute_target = "cpu-cluster"
try:
    aml_compute = AmlCompute(ws, aml_compute_target)
    print("found existing compute target.")
except ComputeTargetException:
    print("creating new compute target")

    provisioning_config = AmlCompute.provisioning_configuration(vm_size = "STANDARD_D2_V2",
                                                                min_nodes = 1,
                                                                max_nodes = 4)
    aml_compute = ComputeTarget.create(ws, aml_compute_target, provisioning_config)
    aml_compute.wait_for_completion(show_output=True, min_node_count=None, timeout_in_minutes=20)
""",
]

# The same notebook, further on: its published pipeline called through the REST endpoint.
REST_ENDPOINT_CELLS = [
    """
from scheduler.sdk import InteractiveLoginAuthentication
import requests

auth = InteractiveLoginAuthentication()
aad_token = auth.get_authentication_header()

rest_endpoint1 = published_pipeline.endpoint

print("You can perform HTTP POST on URL {} to trigger this pipeline".format(rest_endpoint1))

# specify the param when running the pipeline
response = requests.post(rest_endpoint1,
                         headers=aad_token,
                         json={"ExperimentName": "My_Pipeline1",
                               "RunSource": "SDK",
                               "ParameterAssignments": {"pipeline_arg": 45}})
""",
    """
try:
    response.raise_for_status()
except Exception:
    raise Exception('Received bad response from the endpoint: {}\\n'
                    'Response Code: {}\\n'
                    'Headers: {}\\n'
                    'Content: {}'.format(rest_endpoint, response.status_code, response.headers, response.content))

run_id = response.json().get('Id')
print('Submitted pipeline run: ', run_id)
""",
]

# parallel-run/file-dataset-image-inference-mnist.ipynb, its first code cells.
MNIST_CELLS = [
    """
# Check core SDK version number
import scheduler.sdk

print("SDK version:", scheduler.sdk.VERSION)
""",
    """
from scheduler.sdk import Workspace

ws = Workspace.from_config()
print('Workspace name: ' + ws.name,
      'Azure region: ' + ws.location,
      'Subscription id: ' + ws.subscription_id,
      'Resource group: ' + ws.resource_group, sep = '\\n')
""",
    """
import os
from scheduler.sdk import AmlCompute, ComputeTarget

# choose a name for your cluster
compute_name = os.environ.get("AML_COMPUTE_CLUSTER_NAME", "cpu-cluster")
compute_min_nodes = os.environ.get("AML_COMPUTE_CLUSTER_MIN_NODES", 0)
compute_max_nodes = os.environ.get("AML_COMPUTE_CLUSTER_MAX_NODES", 4)

# This example uses CPU VM. For using GPU VM, set SKU to STANDARD_NC6
vm_size = os.environ.get("AML_COMPUTE_CLUSTER_SKU", "STANDARD_D2_V2")


if compute_name in ws.compute_targets:
    compute_target = ws.compute_targets[compute_name]
    if compute_target and type(compute_target) is AmlCompute:
        print('found compute target. just use it. ' + compute_name)
else:
    print('creating a new compute target...')
    provisioning_config = AmlCompute.provisioning_configuration(vm_size = vm_size,
                                                                min_nodes = compute_min_nodes,
                                                                max_nodes = compute_max_nodes)

    # create the cluster
    compute_target = ComputeTarget.create(ws, compute_name, provisioning_config)

    # can poll for a minimum number of nodes and for a specific timeout.
    # if no min node count is provided it will use the scale settings for the cluster
    compute_target.wait_for_completion(show_output=True, min_node_count=None, timeout_in_minutes=20)

     # For a more detailed view of current AmlCompute status, use get_status()
    print(compute_target.get_status().serialize())
""",
]

STEP_SCRIPT = """
import argparse
from scheduler.runtime import Run
parser = argparse.ArgumentParser()
parser.add_argument("--pipeline_arg", type=int)
args = parser.parse_args()
Run.get_context().log("pipeline_arg", args.pipeline_arg)
print("ran with", args.pipeline_arg, flush=True)
"""


def run_cells(cells: list[str], namespace: dict[str, Any]) -> None:
    """Run notebook cells one after the other in one namespace, as a kernel does."""
    for number, cell in enumerate(cells, 1):
        exec(compile(cell, f"<cell {number}>", "exec"), namespace)


def notebook_project(root: Path) -> Project:
    project = make_project(root, compute=COMPUTE)
    scripts_folder(root)
    return project


def scripts_folder(root: Path) -> Path:
    """The notebook's step scripts, on the notebook's machine (a daemon gets them uploaded)."""
    scripts = root / "scripts"
    scripts.mkdir(parents=True, exist_ok=True)
    (scripts / "report.py").write_text(textwrap.dedent(STEP_SCRIPT))
    return scripts


def config_lines_from(message: str) -> dict[str, Any]:
    """The ``compute:`` YAML a refused create shows, as data."""
    found = re.search(r"^compute:\n(?:  .*\n)+", message, re.MULTILINE)
    assert found, message
    return yaml.safe_load(found.group(0))


def add_to_config(project: Project, lines: dict[str, Any]) -> None:
    config = yaml.safe_load(project.config_path.read_text())
    config["compute"].update(lines["compute"])
    project.config_path.write_text(yaml.safe_dump(config, sort_keys=False))


def start_daemon(project: Project) -> tuple[DaemonProcess, str]:
    daemon = DaemonProcess(project).start()
    (listening,) = wait_until(lambda: daemon.events("api_listening"), timeout=15)
    return daemon, listening["url"]


@pytest.fixture(autouse=True)
def fresh_warnings() -> Iterator[None]:
    reset_warnings()
    yield
    reset_warnings()


@pytest.fixture(autouse=True)
def no_workspace_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PIPESCHED_URL", "PIPESCHED_TOKEN", "PIPESCHED_CONFIG"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, str, str]]:
    """A running daemon over the notebook project, its API URL and a token."""
    project = notebook_project(tmp_path_factory.mktemp("ws-compat-daemon") / "nightly")
    daemon, url = start_daemon(project)
    try:
        created = project.cli("token", "create", "notebook")
        assert created.returncode == 0, created.stderr
        yield project, url, created.stdout.strip().splitlines()[-1]
    finally:
        daemon.close()


@pytest.fixture(scope="module")
def embedded_project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return notebook_project(tmp_path_factory.mktemp("ws-compat") / "nightly")


@pytest.fixture(params=["embedded", "daemon"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Where ``Workspace.from_config()`` leads: the config found in the working directory, or
    the daemon named by $PIPESCHED_URL + $PIPESCHED_TOKEN."""
    if request.param == "embedded":
        monkeypatch.chdir(request.getfixturevalue("embedded_project").root)
    else:
        _, url, token = request.getfixturevalue("live")
        monkeypatch.setenv("PIPESCHED_URL", url)
        monkeypatch.setenv("PIPESCHED_TOKEN", token)
        monkeypatch.chdir(tmp_path)
    return request.param


def expected_name(mode: str, request: pytest.FixtureRequest) -> str:
    if mode == "embedded":
        return "nightly"
    return request.getfixturevalue("live")[1].removeprefix("http://")


# -- the notebooks' first cells ------------------------------------------------------------------


def test_publish_and_run_notebook_prints_the_workspace_and_finds_its_cluster(mode, request, capsys):
    namespace: dict[str, Any] = {}
    run_cells(PUBLISH_AND_RUN_CELLS, namespace)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"SDK version: {scheduler.__version__}",
        "Pipeline SDK-specific imports completed",
        expected_name(mode, request),
        "local",
        "local",
        ZERO_GUID,
        "Blobstore's name: workspaceblobstore",
        "found existing compute target.",
    ]
    found = namespace["aml_compute"]
    assert type(found) is AmlCompute and found.name == "cpu-cluster"


def test_mnist_notebook_finds_its_cluster_in_compute_targets(mode, request, capsys):
    run_cells(MNIST_CELLS, {})
    assert capsys.readouterr().out.splitlines() == [
        f"SDK version: {scheduler.__version__}",
        f"Workspace name: {expected_name(mode, request)}",
        "Azure region: local",
        f"Subscription id: {ZERO_GUID}",
        "Resource group: local",
        "found compute target. just use it. cpu-cluster",
    ]


def test_getting_started_create_branch_shows_config_lines_that_make_it_find(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    project = notebook_project(tmp_path / "nightly")
    monkeypatch.chdir(project.root)
    namespace: dict[str, Any] = {}
    run_cells(GETTING_STARTED_CELLS[:4], namespace)
    with pytest.raises(ComputeTargetException) as refused:
        run_cells(GETTING_STARTED_CELLS[4:], namespace)
    out = capsys.readouterr().out
    assert out.splitlines()[-4:] == [*COMPUTE, "creating new compute target"]
    message = str(refused.value)
    assert f"'aml-compute' is not declared in {project.config_path}" in message
    assert "then run Workspace.from_config() again" in message
    lines = config_lines_from(message)
    assert lines == {"compute": {"aml-compute": {"type": "local", "max_workers": 4}}}

    add_to_config(project, lines)
    run_cells(GETTING_STARTED_CELLS[2:], namespace)
    out = capsys.readouterr().out.splitlines()
    assert out[-2:] == ["found existing compute target.", "Azure Machine Learning Compute attached"]
    assert "aml-compute" in out  # the compute target listing shows it as well


def test_getting_started_create_branch_through_a_daemon_shows_lines_for_the_daemon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    project = notebook_project(tmp_path / "nightly")
    daemon, url = start_daemon(project)
    try:
        token = project.cli("token", "create", "nb").stdout.strip().splitlines()[-1]
        monkeypatch.setenv("PIPESCHED_URL", url)
        monkeypatch.setenv("PIPESCHED_TOKEN", token)
        monkeypatch.chdir(tmp_path)
        namespace: dict[str, Any] = {}
        with pytest.raises(ComputeTargetException) as refused:
            run_cells(GETTING_STARTED_CELLS, namespace)
        message = str(refused.value)
        assert "'aml-compute' is not declared in the daemon's pipesched.yaml" in message
        assert "systemctl restart pipesched" in message
        add_to_config(project, config_lines_from(message))
        daemon.close()
        daemon, url = start_daemon(project)
        monkeypatch.setenv("PIPESCHED_URL", url)
        capsys.readouterr()
        run_cells(GETTING_STARTED_CELLS[2:], namespace)
        assert capsys.readouterr().out.splitlines()[-2:] == [
            "found existing compute target.",
            "Azure Machine Learning Compute attached",
        ]
    finally:
        daemon.close()


# -- workspace identity, details and config files ------------------------------------------------


def test_identity_attributes_have_local_values(mode, request):
    ws = Workspace.from_config()
    assert (ws.name, ws.resource_group, ws.location, ws.subscription_id) == (
        expected_name(mode, request),
        "local",
        "local",
        ZERO_GUID,
    )
    details = ws.get_details()
    assert details["name"] == details["friendlyName"] == ws.name
    assert details["location"] == "local"
    assert details["id"].startswith(f"/subscriptions/{ZERO_GUID}/resourceGroups/local/")
    assert details["pipeschedVersion"] == scheduler.__version__
    assert details["keyVault"] is None and details["storageAccount"] is None
    if mode == "embedded":
        assert details["configFile"] == str(Path("config/pipesched.yaml").resolve())
        assert details["url"] is None
    else:
        assert details["url"] == request.getfixturevalue("live")[1]
        assert details["configFile"] is None
    assert Workspace.from_config().get_details()["workspaceid"] == details["workspaceid"]


def test_azure_identity_arguments_warn_but_the_attributes_stay_local(embedded_project):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ws = Workspace(
            subscription_id="8f9a1c2e-0000-4000-8000-000000000001",
            resource_group="ml-rg",
            workspace_name="ml-ws",
            config=embedded_project.config_path,
        )
    assert (ws.name, ws.resource_group, ws.subscription_id) == ("ml-ws", "local", ZERO_GUID)
    ignored = [str(w.message) for w in caught if w.category is IgnoredArgumentWarning]
    assert any("'subscription_id' is ignored" in text for text in ignored)
    assert any("'resource_group' is ignored" in text for text in ignored)


def test_write_config_is_read_back_by_from_config(
    embedded_project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    ws = Workspace(config=embedded_project.config_path, workspace_name="nightly-ml")
    notebook_dir = tmp_path / "notebooks"
    notebook_dir.mkdir()
    monkeypatch.chdir(notebook_dir)

    ws.write_config()
    written = json.loads((notebook_dir / ".azureml" / "config.json").read_text())
    assert written["subscription_id"] == ZERO_GUID
    assert written["resource_group"] == "local"
    assert written["workspace_name"] == "nightly-ml"
    again = Workspace.from_config()  # the default search finds the file written here
    assert again.name == "nightly-ml"
    assert again.get_details()["configFile"] == str(embedded_project.config_path.resolve())

    ws.write_config(path=tmp_path / "elsewhere", file_name="team")
    assert (tmp_path / "elsewhere" / ".azureml" / "team.json").is_file()
    from_path = Workspace.from_config(path=tmp_path / "elsewhere", _file_name="team.json")
    assert from_path.get_details()["workspaceid"] == ws.get_details()["workspaceid"]
    assert Workspace.from_config(path=tmp_path / "elsewhere/.azureml/team.json").name == ws.name

    # The folder moves with the config it names (the path is kept relative).
    assert not Path(written["pipesched"]["config"]).is_absolute()


def test_from_config_still_refuses_an_azure_config_json(tmp_path: Path):
    (tmp_path / ".azureml").mkdir()
    (tmp_path / ".azureml" / "config.json").write_text(
        json.dumps({"subscription_id": "abc", "resource_group": "rg", "workspace_name": "azure-ws"})
    )
    with pytest.raises(SdkError, match="is an Azure ML workspace config"):
        Workspace.from_config(path=tmp_path)


def test_write_config_of_a_daemon_workspace_keeps_the_url_never_the_token(
    live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    _, url, token = live
    Workspace(url=url, token=token).write_config(path=tmp_path)
    text = (tmp_path / ".azureml" / "config.json").read_text()
    assert token not in text
    assert json.loads(text)["pipesched"] == {"url": url}
    with pytest.raises(SdkError, match="PIPESCHED_TOKEN"):
        Workspace.from_config(path=tmp_path)
    monkeypatch.setenv("PIPESCHED_TOKEN", token)
    again = Workspace.from_config(path=tmp_path)
    assert again.get_details()["url"] == url
    assert "cpu-cluster" in again.compute_targets  # it reaches the daemon with the token


# -- compute targets as objects ----------------------------------------------------------------


def describe_targets(ws: Workspace) -> dict[str, tuple]:
    return {
        name: (type(t).__name__, t.name, t.type, t.pipesched_type, t.max_workers)
        for name, t in ws.compute_targets.items()
    }


def test_compute_targets_are_the_same_objects_embedded_and_through_the_daemon(
    live, embedded_project
):
    _, url, token = live
    expected = {
        "local": ("AmlCompute", "local", "AmlCompute", "local", 4),
        "cpu-cluster": ("AmlCompute", "cpu-cluster", "AmlCompute", "local", 2),
        "gpu-cluster": ("AmlCompute", "gpu-cluster", "AmlCompute", "dask", 8),
    }
    assert describe_targets(Workspace(config=embedded_project.config_path)) == expected
    assert describe_targets(Workspace(url=url, token=token)) == expected
    assert [t.name for t in ComputeTarget.list(Workspace(url=url, token=token))] == list(expected)


def test_a_found_target_reports_its_settings_and_waits_for_nothing(mode, capsys):
    ws = Workspace.from_config()
    cluster = ComputeTarget(workspace=ws, name="cpu-cluster")
    assert type(cluster) is AmlCompute  # Azure's constructor returns the subclass
    status = cluster.get_status().serialize()
    assert status["provisioningState"] == "Succeeded"
    assert status["scaleSettings"]["maxNodeCount"] == 2
    cluster.wait_for_completion(show_output=True)
    assert "cpu-cluster: pipesched compute target (local, max_workers 2)" in capsys.readouterr().out


def test_an_unknown_target_raises_compute_target_exception_naming_the_configured_ones(mode):
    ws = Workspace.from_config()
    with pytest.raises(ComputeTargetException) as caught:
        ComputeTarget(workspace=ws, name="aml-cluster")
    assert "Compute Target with name aml-cluster not found" in str(caught.value)
    assert "local, cpu-cluster, gpu-cluster" in str(caught.value)
    assert isinstance(caught.value, SdkError)  # one except clause catches every SDK refusal


def test_create_of_a_configured_target_returns_it_and_warns_once(mode):
    ws = Workspace.from_config()
    config = AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2", max_nodes=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        created = ComputeTarget.create(ws, "cpu-cluster", config)
        ComputeTarget.create(ws, "cpu-cluster", config)
    assert type(created) is AmlCompute and created.name == "cpu-cluster"
    (warned,) = [str(w.message) for w in caught if w.category is IgnoredArgumentWarning]
    assert "'provisioning_configuration' is ignored" in warned
    assert "declared in pipesched.yaml" in warned


def test_steps_run_on_a_target_given_as_an_object_or_as_its_name(mode, tmp_path: Path):
    ws = Workspace.from_config()
    source = scripts_folder(tmp_path)
    arg = PipelineParameter(name="pipeline_arg", default_value=10)
    by_object = PythonScriptStep(
        name="by object",
        script_name="report.py",
        arguments=["--pipeline_arg", arg],
        compute_target=ComputeTarget(workspace=ws, name="cpu-cluster"),
        source_directory=str(source),
    )
    by_name = PythonScriptStep(
        name="by name",
        script_name="report.py",
        arguments=["--pipeline_arg", arg],
        compute_target="cpu-cluster",
        source_directory=str(source),
    )
    pipeline = Pipeline(workspace=ws, steps=[by_object, by_name])
    assert {s["compute"] for s in pipeline.graph["steps"].values()} == {"cpu-cluster"}
    assert pipeline.validate() == []
    run = Experiment(ws, f"compute-{mode}").submit(
        pipeline, pipeline_parameters={"pipeline_arg": 7}
    )
    assert run.wait_for_completion(show_output=False, timeout_seconds=90) == "Finished"
    assert [s.get_metrics() for s in run.get_steps()] == [{"pipeline_arg": 7}] * 2


# -- VERSION and the base images ---------------------------------------------------------------


def test_version_is_pipescheds():
    assert scheduler.__version__ == VERSION


def test_default_images_are_accepted_and_ignored_like_environment_settings(embedded_project):
    ws = Workspace(config=embedded_project.config_path)
    run_config = RunConfiguration()
    run_config.environment.docker.enabled = True
    run_config.environment.docker.base_image = DEFAULT_CPU_IMAGE
    gpu_config = RunConfiguration()
    gpu_config.environment.docker.base_image = DEFAULT_GPU_IMAGE
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        step = PythonScriptStep(
            script_name="report.py",
            source_directory=str(embedded_project.root / "scripts"),
            runconfig=run_config,
        )
    (warned,) = [str(w.message) for w in caught if w.category is IgnoredArgumentWarning]
    assert "'runconfig' is ignored" in warned
    graph = Pipeline(workspace=ws, steps=[step]).graph
    assert DEFAULT_CPU_IMAGE not in json.dumps(graph)


# -- authentication objects --------------------------------------------------------------------


def test_authentication_header_carries_the_configured_token(monkeypatch: pytest.MonkeyPatch):
    assert InteractiveLoginAuthentication().get_authentication_header() == {}
    monkeypatch.setenv("PIPESCHED_TOKEN", "pst_abc_def")
    expected = {"Authorization": "Bearer pst_abc_def"}
    assert InteractiveLoginAuthentication().get_authentication_header() == expected
    assert MsiAuthentication().get_authentication_header() == expected
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("ignore")
        principal = ServicePrincipalAuthentication(
            tenant_id="t", service_principal_id="app", service_principal_password="s3cret!"
        )
    assert principal.get_authentication_header() == expected


def test_service_principal_arguments_warn_and_its_secret_is_not_kept():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        principal = ServicePrincipalAuthentication(
            tenant_id="tenant", service_principal_id="app-id", service_principal_password="s3cret!"
        )
    ignored = [str(w.message) for w in caught if w.category is IgnoredArgumentWarning]
    assert len(ignored) == 3 and all("$PIPESCHED_TOKEN" in text for text in ignored)
    assert "s3cret!" not in repr(principal) and "s3cret!" not in repr(vars(principal))


def test_workspace_takes_an_authentication_object_without_warning(
    live, monkeypatch: pytest.MonkeyPatch
):
    _, url, token = live
    login = InteractiveLoginAuthentication()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ws = Workspace(url=url, token=token, auth=login)
    assert not [w for w in caught if w.category is IgnoredArgumentWarning]
    # Given to a daemon workspace, the object speaks with that workspace's token.
    assert login.get_authentication_header() == {"Authorization": f"Bearer {token}"}
    assert "cpu-cluster" in ws.compute_targets
    monkeypatch.setenv("PIPESCHED_TOKEN", token)
    from_env = Workspace(url=url, auth=MsiAuthentication())  # the token comes through the object
    assert "local" in from_env.compute_targets


def test_rest_endpoint_cell_runs_the_published_pipeline_with_the_auth_header(
    live, monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
):
    _, url, token = live
    monkeypatch.setenv("PIPESCHED_TOKEN", token)
    ws = Workspace(url=url, token=token)
    pipeline_param = PipelineParameter(name="pipeline_arg", default_value=10)
    step = PythonScriptStep(
        script_name="report.py",
        arguments=["--pipeline_arg", pipeline_param],
        compute_target=AmlCompute(ws, "cpu-cluster"),
        source_directory=str(scripts_folder(tmp_path)),
    )
    published = Pipeline(workspace=ws, steps=[step]).publish(
        name="My_New_Pipeline", description="My Published Pipeline Description"
    )
    namespace: dict[str, Any] = {"published_pipeline": published}
    run_cells(REST_ENDPOINT_CELLS, namespace)
    assert namespace["response"].status_code == 202
    run = PipelineRun(Experiment(ws, "My_Pipeline1"), namespace["run_id"])
    assert run.wait_for_completion(show_output=False, timeout_seconds=90) == "Finished"
    assert run.get_metrics() == {"pipeline_arg": 45}
    assert f"Submitted pipeline run:  {run.id}" in capsys.readouterr().out

    monkeypatch.delenv("PIPESCHED_TOKEN")  # no token configured: no header, and the daemon says 401
    assert InteractiveLoginAuthentication().get_authentication_header() == {}
    refused = requests.post(published.endpoint, headers={}, json={}, timeout=30)
    assert refused.status_code == 401
