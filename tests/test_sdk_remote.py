"""The SDK through a REAL daemon's REST API (``Workspace(url=..., token=...)``): the saved
pipeline folder is uploaded, run by the daemon, and read back over HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler.core.errors import ParameterError
from scheduler.sdk import Experiment, PipelineRun, Workspace
from scheduler.sdk._warn import SdkError
from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess
from tests.projects import Project
from tests.test_sdk_runtime_embedded import _project


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, str, str]]:
    """A running daemon over a small project, its API URL and a token."""
    project = _project(tmp_path_factory.mktemp("sdk-remote"))
    daemon = DaemonProcess(project).start()
    try:
        (listening,) = wait_until(lambda: daemon.events("api_listening"), timeout=15)
        created = project.cli("token", "create", "sdk-tests")
        assert created.returncode == 0, created.stderr
        yield project, listening["url"], created.stdout.strip().splitlines()[-1]
    finally:
        daemon.close()


@pytest.fixture
def ws(live) -> Workspace:
    _, url, token = live
    return Workspace(url=url, token=token)


def _submit(ws: Workspace, project: Project, name: str, experiment: str, **params) -> PipelineRun:
    folder = project.root / "pipelines" / name
    run_id = ws._backend.submit(folder, experiment=experiment, parameters=params)
    return PipelineRun(Experiment(ws, experiment), run_id)


def test_submit_runs_on_the_daemon_and_reads_back(live, ws: Workspace):
    project = live[0]
    run = _submit(ws, project, "train", "remote-train", reg=0.5)
    assert run.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    assert run.get_metrics() == {"rows": 3, "reg": 0.5, "accuracy": 0.9}
    assert [s.name for s in run.get_steps()] == ["Prepare Data", "Train Model"]
    listed = json.loads(project.cli("runs", "--json", "--limit", "0").stdout)
    (mine,) = [r for r in listed if r["id"] == run.id]
    assert mine["trigger"] == "api" and mine["experiment"] == "remote-train"


def test_show_output_follows_the_log_stream(live, ws: Workspace, capsys):
    run = _submit(ws, live[0], "train", "remote-show", reg=0.125)
    assert run.wait_for_completion(show_output=True, timeout_seconds=60) == "Finished"
    shown = capsys.readouterr().out
    # prep may be reused from an earlier test's run (the daemon reuses): train runs anew.
    assert f"StepRunId: {run.id}/prep" in shown and f"StepRunId: {run.id}/train" in shown
    assert "trained on 3 rows with reg 0.125" in shown


def test_experiment_runs_come_from_the_daemon(live, ws: Workspace):
    run = _submit(ws, live[0], "train", "remote-listed", reg=0.5)
    run.wait_for_completion(show_output=False, timeout_seconds=60)
    assert [r.id for r in Experiment(ws, "remote-listed").get_runs()] == [run.id]


def test_wrong_token_is_refused_with_the_fix(live):
    _, url, _ = live
    ws = Workspace(url=url, token="pst_000000000000_wrongwrongwrongwrongwrong")
    with pytest.raises(SdkError, match="token refused") as caught:
        ws._backend.list_runs()
    assert "pipesched token create" in str(caught.value)


def test_bad_parameter_raises_before_anything_is_recorded(live, ws: Workspace):
    project = live[0]
    before = ws._backend.list_runs(limit=0)
    with pytest.raises(ParameterError, match="parameter 'reg' must be a number") as caught:
        _submit(ws, project, "train", "remote-bad", reg="lots")
    assert caught.value.name == "reg"
    after = ws._backend.list_runs(limit=0)
    assert [r["id"] for r in after] == [r["id"] for r in before]


def test_unreachable_daemon_names_the_url_and_systemctl():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the test talks to it
    ws = Workspace(url=f"http://127.0.0.1:{port}", token="pst_x")
    with pytest.raises(SdkError, match=f"127.0.0.1:{port}") as caught:
        ws._backend.list_runs()
    assert "systemctl status pipesched" in str(caught.value)


def test_cancel_goes_through_the_daemon(live, ws: Workspace):
    run = _submit(ws, live[0], "waiter", "remote-cancel")
    (step,) = run.get_steps()
    wait_until(lambda: step.get_status() == "Running", timeout=30)
    run.cancel()
    assert run.get_status() == "Canceled"


def test_published_pipeline_endpoint_is_the_daemon_url(live, ws: Workspace):
    from scheduler.sdk import PipelineEndpoint, PublishedPipeline

    project, url, _ = live
    data = ws._backend.publish(
        project.root / "pipelines" / "train", name="remote-trainer", version="1", description="x"
    )
    published = PublishedPipeline._from_json(ws, data)
    assert published.endpoint == f"{url}/api/v1/pipelines/remote-trainer/versions/1/runs"
    endpoint = PipelineEndpoint.get(ws, name="remote-trainer")
    assert endpoint.endpoint == (
        f"{url}/api/v1/PipelineRuns/PipelineEndpointSubmit/Id/{endpoint.id}"
    )
    run = endpoint.submit("remote-endpoint", pipeline_parameters={"reg": 0.75})
    assert run.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    assert run.get_details()["version"] == "1"


def test_a_finished_run_publishes_its_definition(live, ws: Workspace):
    run = _submit(ws, live[0], "train", "remote-pub", reg=0.5)
    run.wait_for_completion(show_output=False, timeout_seconds=60)
    published = run.publish_pipeline(name="from-run", description="d", version="3")
    assert published.id == "from-run@3"
    again = published.submit(ws, "remote-pub-again", pipeline_parameters={"reg": 0.5})
    assert again.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"


def test_an_output_downloads_over_the_daemons_datastore_api(live, ws: Workspace, tmp_path: Path):
    run = _submit(ws, live[0], "train", "remote-out", reg=0.5)
    run.wait_for_completion(show_output=False, timeout_seconds=60)
    (prep,) = run.find_step_run("prep")
    output = prep.get_output_data("prepped")
    assert output.path_on_datastore.startswith(".pipesched/outputs/")
    assert output.path_on_datastore.endswith("/prep/prepped")
    local = Path(output.download(str(tmp_path), show_progress=False))
    assert local == tmp_path / output.path_on_datastore
    copied = sorted(p.relative_to(local) for p in local.rglob("*") if p.is_file())
    on_daemon = sorted(
        p.relative_to(output.folder) for p in output.folder.rglob("*") if p.is_file()
    )
    assert copied and copied == on_daemon
    with pytest.raises(SdkError, match="exists"):
        output.download(str(tmp_path), show_progress=False)


def test_regenerate_outputs_reaches_the_daemon(live, ws: Workspace):
    project = live[0]
    first = _submit(ws, project, "train", "remote-regenerate", reg=0.25)
    assert first.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    folder = project.root / "pipelines" / "train"
    again = ws._backend.submit(
        folder,
        experiment="remote-regenerate",
        parameters={"reg": 0.25},
        regenerate_outputs=True,
    )
    rerun = PipelineRun(Experiment(ws, "remote-regenerate"), again)
    assert rerun.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    assert [s.get_status() for s in rerun.get_steps()] == ["Finished", "Finished"]
    assert all(s["reused_from"] is None for s in rerun.get_details()["steps"])


def test_a_published_pipeline_regenerates_outputs_through_the_daemon(live, ws: Workspace):
    run = _submit(ws, live[0], "train", "remote-pub-regen", reg=0.375)
    run.wait_for_completion(show_output=False, timeout_seconds=60)
    published = run.publish_pipeline(name="regen-from-run", description="d", version="1")
    fresh = published.submit(
        ws, "remote-pub-regen", pipeline_parameters={"reg": 0.375}, regenerate_outputs=True
    )
    assert fresh.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    assert [s["reused_from"] for s in fresh.get_details()["steps"]] == [None, None]
    reused = published.submit(ws, "remote-pub-regen", pipeline_parameters={"reg": 0.375})
    assert reused.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    assert all(s["reused_from"] for s in reused.get_details()["steps"])
