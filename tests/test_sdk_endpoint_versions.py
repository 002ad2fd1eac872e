"""Versioned pipeline endpoints as an Azure ML notebook uses them: an endpoint numbers its own
versions "0", "1"... apart from the published pipelines' labels, takes a pipeline published
under another name, is found by name or by an id that a rename keeps, and runs its default or
one version — through ``submit``, ``Experiment.submit(..., pipeline_version=)`` and Azure's URL
forms over HTTP. Once on an embedded workspace and once through a real daemon's REST API."""

from __future__ import annotations

import json
import socket
import warnings
from pathlib import Path

import pytest
import requests

from scheduler.core.errors import NotFound
from scheduler.sdk import (
    Experiment,
    Pipeline,
    PipelineEndpoint,
    Schedule,
    ScheduleRecurrence,
    Workspace,
)
from tests.conftest import wait_until
from tests.projects import Project, make_project
from tests.test_sdk_runtime_embedded import SCRIPTS, TRAIN


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def project(tmp_path: Path) -> Project:
    # A fixed port: the endpoint URL an embedded workspace reports is the one the daemon serves.
    project = make_project(tmp_path, api={"host": "127.0.0.1", "port": free_port()})
    project.pipeline("train", TRAIN, SCRIPTS)
    return project


@pytest.fixture
def served(project: Project, daemons) -> tuple[str, str]:
    """A running daemon on the project: its API URL and a token."""
    daemon = daemons(project).start()
    (listening,) = wait_until(lambda: daemon.events("api_listening"), timeout=15)
    created = project.cli("token", "create", "endpoints")
    assert created.returncode == 0, created.stderr
    return listening["url"], created.stdout.strip().splitlines()[-1]


def ran(project: Project, run_id: str) -> dict:
    """The finished run as ``pipesched show --json`` has it."""

    def finished() -> dict | None:
        shown = json.loads(project.cli("show", run_id, "--json").stdout)
        return shown if shown["status"] in ("completed", "failed", "canceled") else None

    shown = wait_until(finished, timeout=60)
    assert shown["status"] == "completed", shown
    return shown


def exercise(ws: Workspace, project: Project, token: str) -> None:
    """The notebook's flow, cell by cell."""
    pipeline = Pipeline.load_yaml(ws, project.root / "pipelines" / "train")
    published = pipeline.publish(name="nightly-model", description="published on its own")
    assert published.id == "nightly-model@1"

    endpoint = PipelineEndpoint.publish(
        workspace=ws, name="EndpointTest", pipeline=pipeline, description="a test endpoint"
    )
    by_name = PipelineEndpoint.get(workspace=ws, name="EndpointTest")
    by_id = PipelineEndpoint.get(workspace=ws, id=by_name.id)
    assert by_id.name == "EndpointTest" and by_id.id == endpoint.id
    assert "EndpointTest" in [e.name for e in PipelineEndpoint.get_all(workspace=ws)]
    assert by_name.description == "a test endpoint"

    # The endpoint's own numbers, not the published labels.
    assert by_name.get_default_version() == "0"
    by_name.set_default_version("0")
    assert by_name.get_pipeline("0").id == "EndpointTest@1"
    assert by_name.get_pipeline().id == "EndpointTest@1"

    # A pipeline published under another name joins as version "1", then becomes the default.
    by_name.add(published)
    by_name.add(published)  # already a version: keeps its number
    by_name.set_default(published)
    assert by_name.get_default_version() == "1"
    versions = by_name.list_versions()
    assert [(v.version, v.pipeline_id, v.pipeline.id) for v in versions] == [
        ("0", "EndpointTest@1", "EndpointTest@1"),
        ("1", "nightly-model@1", "nightly-model@1"),
    ]
    assert [p.id for p in by_name.get_all_pipelines(active_only=True)] == [
        "EndpointTest@1",
        "nightly-model@1",
    ]
    with pytest.raises(NotFound, match="has no version '7' \\(it has: 0, 1\\)"):
        by_name.get_pipeline("7")

    by_name.set_name(name="NewName")
    renamed = PipelineEndpoint.get(workspace=ws, name="NewName")
    assert renamed.id == endpoint.id and renamed.get_default_version() == "1"
    with pytest.raises(NotFound):
        PipelineEndpoint.get(workspace=ws, name="EndpointTest")

    # Azure's URL forms: by id (default, or + "/" + version), and by name.
    headers = {"Authorization": f"Bearer {token}"}
    by_id_url = renamed.endpoint + "/" + "0"
    answer = requests.post(
        by_id_url,
        headers=headers,
        json={"ExperimentName": "by-id", "RunSource": "SDK", "ParameterAssignments": {"reg": 0.3}},
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    shown = ran(project, answer.json()["Id"])
    assert (shown["pipeline"], shown["version"], shown["experiment"]) == (
        "EndpointTest",
        "1",
        "by-id",
    )
    by_name_url = renamed.endpoint.split("Id", 1)[0] + "Name?name=" + renamed.name
    answer = requests.post(by_name_url + "&pipelineVersion=1", headers=headers, json={}, timeout=30)
    assert answer.status_code == 202, answer.text
    shown = ran(project, answer.json()["Id"])
    assert (shown["pipeline"], shown["parameters"]) == ("nightly-model", {"reg": 0.1})
    answer = requests.post(by_name_url, headers=headers, json={}, timeout=30)
    assert answer.status_code == 202, answer.text
    assert ran(project, answer.json()["Id"])["pipeline"] == "nightly-model"  # the default
    # REST keeps refusing a parameter the pipeline does not declare: a typo must not run.
    refused = requests.post(
        renamed.endpoint,
        headers=headers,
        json={"ParameterAssignments": {"colour": "blue"}},
        timeout=30,
    )
    assert refused.status_code == 422 and "colour" in refused.text

    # submit and Experiment.submit run the version asked for.
    run = renamed.submit("NewName", pipeline_version="0", regenerate_outputs=True)
    assert run.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    shown = ran(project, run.id)
    assert (shown["pipeline"], shown["version"]) == ("EndpointTest", "1")  # version "0"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pipeline_version is honoured: no warning
        run = Experiment(ws, name="from-endpoint").submit(renamed, pipeline_version="0")
    assert run.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    shown = ran(project, run.id)
    assert (shown["pipeline"], shown["experiment"]) == ("EndpointTest", "from-endpoint")

    # The SDK's own submit leaves undeclared parameters out, naming them.
    with pytest.warns(UserWarning, match="declares no parameter 'colour'"):
        run = renamed.submit("NewName", pipeline_parameters={"reg": 0.4, "colour": "blue"})
    assert run.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    shown = ran(project, run.id)
    assert (shown["pipeline"], shown["parameters"]) == ("nightly-model", {"reg": 0.4})  # default

    # A schedule for the endpoint runs its default version.
    schedule = Schedule.create_for_pipeline_endpoint(
        ws,
        name="endpoint-weekly",
        pipeline_endpoint_id=renamed.id,
        experiment_name="scheduled",
        recurrence=ScheduleRecurrence(frequency="Week", interval=1, week_days=["Monday"]),
    )
    assert schedule.pipeline_id == "nightly-model@1"


def test_endpoint_versions_embedded(project: Project, served):
    _, token = served
    exercise(Workspace.from_config(path=str(project.config_path)), project, token)


def test_endpoint_versions_through_the_daemon(project: Project, served):
    url, token = served
    exercise(Workspace(url=url, token=token), project, token)


def test_a_schedule_for_an_endpoint_fires_its_default_version(project: Project, served):
    """The endpoint made by PipelineEndpoint.publish has no working copy of its name: the
    schedule runs the published pipeline that is its default."""
    url, token = served
    ws = Workspace(url=url, token=token)
    pipeline = Pipeline.load_yaml(ws, project.root / "pipelines" / "train")
    endpoint = PipelineEndpoint.publish(ws, "scoring-endpoint", "scores", pipeline)
    schedule = Schedule.create_for_pipeline_endpoint(
        ws,
        name="hourly-scoring",
        pipeline_endpoint_id=endpoint.id,
        experiment_name="scoring",
        recurrence=ScheduleRecurrence(frequency="Hour", interval=1),
    )
    assert schedule.pipeline_id == "scoring-endpoint@1"
    found = Schedule.get_schedules_for_pipeline_endpoint_id(ws, endpoint.id)
    assert [(s.name, s.pipeline_endpoint_id) for s in found] == [("hourly-scoring", endpoint.id)]
    schedule.update(description="scores every hour")
    assert Schedule.get(ws, "hourly-scoring").pipeline_endpoint_id == endpoint.id
    fired = project.cli("schedule", "trigger", "hourly-scoring")
    assert fired.returncode == 0, fired.stderr
    runs = json.loads(project.cli("runs", "--json", "--limit", "0").stdout)
    (scheduled,) = [r for r in runs if r["schedule"] == "hourly-scoring"]
    shown = ran(project, scheduled["id"])
    assert (shown["pipeline"], shown["version"]) == ("scoring-endpoint", "1")
