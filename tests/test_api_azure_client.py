"""A client written the way Azure ML users call a published pipeline endpoint (the snippet of
Azure's documentation, with ``requests``) works against pipesched with only the URL and the
token changed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from scheduler.services.publish import endpoint_url
from scheduler.services.tokens import create_token
from tests.api_server import TRAIN, LiveApi, live_api
from tests.projects import make_project


@pytest.fixture
def live(tmp_path) -> Iterator[LiveApi]:
    project = make_project(tmp_path)
    project.pipeline("train", TRAIN, {"train.py": "print('hi')\n"})
    with project.store() as store, live_api(project.config(), store) as api:
        yield api


def azure_user_submits(endpoint: str, token: str) -> str:
    """What an Azure ML SDK v1 user has in a notebook (only endpoint and token differ)."""
    auth_header = {"Authorization": "Bearer " + token}
    response = requests.post(
        endpoint,
        headers=auth_header,
        json={
            "ExperimentName": "weekly-retrain",
            "ParameterAssignments": {"reg": 0.01, "epochs": 10},
            "DataPathAssignments": {
                "input_path": {"DataStoreName": "default", "RelativePath": "inbox/week48.csv"}
            },
        },
        timeout=30,
    )
    response.raise_for_status()
    run_id = response.json()["Id"]
    return run_id


def test_azure_style_client_starts_a_run(live: LiveApi):
    token = create_token(live.store, "notebook")
    port = live.url.rsplit(":", 1)[1]
    # The advertised endpoint, with the listener's real port (the project binds port 0).
    endpoint = endpoint_url(live.config, "train", None).replace(":0/", f":{port}/")
    run_id = azure_user_submits(endpoint, token)
    run = live.store.get_run(run_id)
    assert (run.status, run.experiment, run.trigger) == ("queued", "weekly-retrain", "api")
    assert run.parameters["input_path"] == "datastore://default/inbox/week48.csv"


def test_azure_style_client_without_the_token_raises_401(live: LiveApi):
    with pytest.raises(requests.HTTPError, match="401"):
        azure_user_submits(f"{live.url}/api/v1/pipelines/train/runs", "")
