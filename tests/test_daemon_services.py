"""The real daemon with its REST listener and file-drop triggers wired in: what a user does
end to end (issues 5 and 6), with the daemon as a subprocess."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import requests

from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess
from tests.projects import Project, make_project


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = make_project(tmp_path, shutdown_grace="1s")
    project.pipeline(
        "score",
        """
        parameters:
          input_path: {type: path, default: "inbox"}
          label: {type: str, default: none}
        steps:
          s:
            type: python_script
            script: s.py
            arguments: ["${{parameters.input_path}}", "${{parameters.label}}"]
            allow_reuse: false
        """,
        {"s.py": "import sys; print('scored', sys.argv[1], sys.argv[2])\n"},
    )
    return project


@pytest.fixture
def daemon(project: Project):
    started: list[DaemonProcess] = []

    def start() -> DaemonProcess:
        process = DaemonProcess(project).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.close()


def runs(project: Project):
    with project.store() as store:
        return store.list_runs(limit=0)


def test_an_azure_ml_client_submits_to_the_daemon_with_a_token(project: Project, daemon):
    project.schedules("schedules: []\n")
    process = daemon()
    (listening,) = wait_until(lambda: process.events("api_listening"), timeout=10)
    created = project.cli("token", "create", "ci")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    endpoint = f"{listening['url']}/api/v1/pipelines/score/runs"
    # What an Azure ML SDK v1 user's client does, with only the URL and the token changed:
    response = requests.post(
        endpoint,
        headers={"Authorization": f"Bearer {token}"},
        json={"ExperimentName": "nightly-scoring", "ParameterAssignments": {"label": "from-api"}},
        timeout=10,
    )
    assert response.status_code == 202, response.text
    run_id = response.json()["Id"]
    assert response.json()["ExperimentName"] == "nightly-scoring"
    wait_until(
        lambda: [r for r in runs(project) if r.id == run_id and r.status == "completed"], timeout=15
    )
    (run,) = runs(project)
    assert run.trigger == "api" and run.parameters["label"] == "from-api"
    refused = requests.post(endpoint, json={}, timeout=10)
    assert refused.status_code == 401
    process.stop()


def test_a_file_dropped_into_the_watched_folder_starts_a_run(project: Project, daemon):
    project.schedules("""
        schedules:
          - name: on-drop
            pipeline: score
            on_change: {datastore: default, path: inbox/, patterns: ["*.csv"],
                        data_path_parameter: input_path}
    """)
    inbox = project.datastore / "inbox"
    inbox.mkdir(parents=True)
    process = daemon()
    tmp = inbox / "batch-1.csv.part"
    tmp.write_text("a,b\n1,2\n")
    os.replace(tmp, inbox / "batch-1.csv")  # rename into place: the fast path
    (run,) = wait_until(lambda: [r for r in runs(project) if r.status == "completed"], timeout=15)
    assert run.trigger == "file:inbox/batch-1.csv"
    assert run.parameters["input_path"] == "datastore://default/inbox/batch-1.csv"
    (listed,) = json.loads(project.cli("schedules", "--json").stdout)
    assert listed["kind"] == "on_change" and listed["next_fire_times"] == []
    assert listed["watch"] == {
        "datastore": "default",
        "path": "inbox/",
        "pending": 0,
        "unhandled": 0,
        "last_file": "inbox/batch-1.csv",
    }
    process.stop()
    (inbox / "batch-2.csv").write_text("dropped while down\n")
    process = daemon()
    wait_until(lambda: len([r for r in runs(project) if r.status == "completed"]) == 2, timeout=15)
    assert sorted(r.trigger for r in runs(project)) == [
        "file:inbox/batch-1.csv",
        "file:inbox/batch-2.csv",
    ]
    process.stop()
