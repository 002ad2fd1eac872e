"""Limits at every door of the API: JSON bodies capped by ``api.max_body_bytes`` (413, counted
while read), uploads streamed to disk and capped by ``api.max_upload_bytes``, names and text
fields of bounded length (422 naming the field), strict booleans. A real listener on
127.0.0.1 over a real project and SQLite store."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from scheduler.api.limits import MAX_NAME, MAX_TEXT
from scheduler.core.errors import DefinitionErrors
from scheduler.services.tokens import create_token
from tests.api_server import TRAIN, LiveApi, live_api
from tests.projects import make_project

TIMEOUT = 30
BODY_LIMIT = 64 * 1024
UPLOAD_LIMIT = 256 * 1024


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    project = make_project(
        tmp_path_factory.mktemp("limits"),
        api={
            "host": "127.0.0.1",
            "port": 0,
            "max_body_bytes": "64KiB",
            "max_upload_bytes": "256 KiB",
        },
    )
    project.pipeline("train", TRAIN, {"train.py": "print('hi')\n"})
    with project.store() as store, live_api(project.config(), store) as live:
        yield live


@pytest.fixture(scope="module")
def http(api: LiveApi) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {create_token(api.store, 'limits')}"
        yield session


def submit(api: LiveApi, http: requests.Session, body: dict) -> requests.Response:
    return http.post(f"{api.url}/api/v1/pipelines/train/runs", json=body, timeout=TIMEOUT)


def runs_count(api: LiveApi) -> int:
    return len(api.store.list_runs(limit=10_000))


def test_config_reads_sizes_with_units(api: LiveApi):
    assert api.config.api.max_body_bytes == BODY_LIMIT
    assert api.config.api.max_upload_bytes == UPLOAD_LIMIT


def test_config_defaults_are_1mib_and_200mib(tmp_path: Path):
    config = make_project(tmp_path).config()
    assert config.api.max_body_bytes == 1024 * 1024
    assert config.api.max_upload_bytes == 200 * 1024 * 1024


def test_config_size_that_is_not_a_size_names_the_field(tmp_path: Path):
    project = make_project(tmp_path, api={"host": "127.0.0.1", "max_body_bytes": "lots"})
    with pytest.raises(DefinitionErrors) as caught:
        project.config()
    assert "max_body_bytes" in str(caught.value)
    assert "pipesched.yaml" in str(caught.value)


def test_huge_experiment_name_is_413_and_stores_nothing(api: LiveApi, http):
    before = runs_count(api)
    response = submit(api, http, {"ExperimentName": "x" * (5 * 1024 * 1024)})
    assert response.status_code == 413, response.text
    assert str(BODY_LIMIT) in response.json()["detail"]
    assert runs_count(api) == before


def test_body_without_content_length_is_counted_while_read(api: LiveApi, http):
    def chunks() -> Iterator[bytes]:
        yield b'{"ExperimentName": "'
        for _ in range(40):
            yield b"y" * 4096
        yield b'"}'

    response = http.post(
        f"{api.url}/api/v1/pipelines/train/runs",
        data=chunks(),  # chunked transfer: no Content-Length to refuse by
        headers={"Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 413, response.text


def test_experiment_name_over_256_characters_is_422_naming_it(api: LiveApi, http):
    before = runs_count(api)
    response = submit(api, http, {"ExperimentName": "e" * (MAX_NAME + 1)})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "ExperimentName"]
    assert runs_count(api) == before
    ok = {"ExperimentName": "e" * MAX_NAME, "ParameterAssignments": {"reg": 0.1}}
    assert submit(api, http, ok).status_code == 202


def test_long_parameter_value_is_422_naming_it(api: LiveApi, http):
    body = {"ParameterAssignments": {"reg": "1" * (MAX_TEXT + 1)}}
    response = submit(api, http, body)
    assert response.status_code == 422, response.text
    problem = response.json()["detail"][0]
    assert problem["loc"][:2] == ["body", "ParameterAssignments"]
    assert "'reg'" in problem["msg"]


def test_long_parameter_name_is_422(api: LiveApi, http):
    response = submit(api, http, {"ParameterAssignments": {"p" * (MAX_NAME + 1): 1}})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][:2] == ["body", "ParameterAssignments"]


@pytest.mark.parametrize("value", [0, 1, "false", "true", None])
def test_booleans_are_booleans(api: LiveApi, http, value):
    before = runs_count(api)
    response = submit(api, http, {"ParameterAssignments": {"reg": 0.1}, "RegenerateOutputs": value})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "RegenerateOutputs"]
    response = submit(api, http, {"ContinueRunOnStepFailure": value if value is not None else 2})
    assert response.status_code == 422, response.text
    assert runs_count(api) == before


def test_long_schedule_name_is_422_naming_it(api: LiveApi, http):
    definition = {"name": "s" * (MAX_NAME + 1), "pipeline": "train", "cron": "0 2 * * *"}
    response = http.post(f"{api.url}/api/v1/schedules", json=definition, timeout=TIMEOUT)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "name"]
    assert "s" * (MAX_NAME + 1) not in api.store.schedule_states()


def test_long_publish_description_is_422(api: LiveApi, http):
    body = {"snapshot": "0" * 64, "description": "d" * (MAX_TEXT + 1)}
    response = http.post(f"{api.url}/api/v1/pipelines/train/versions", json=body, timeout=TIMEOUT)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "description"]


# -- uploads --------------------------------------------------------------------------------


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _upload_spools(api: LiveApi) -> list[Path]:
    return list((api.config.state_dir / "snapshots").glob(".upload-*"))


def test_upload_under_the_limit_is_stored(api: LiveApi, http):
    pipeline = b"name: up\nsteps:\n  s: {type: python_script, script: s.py}\n"
    data = _tar_gz({"pipeline.yaml": pipeline, "s.py": b"print(1)\n"})
    response = http.post(
        f"{api.url}/api/v1/snapshots",
        data=data,
        headers={"Content-Type": "application/gzip"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 201, response.text
    assert response.json()["pipeline"] == "up"
    assert _upload_spools(api) == []


def test_upload_over_the_limit_is_413_by_content_length(api: LiveApi, http):
    response = http.post(
        f"{api.url}/api/v1/snapshots",
        data=b"\0" * (UPLOAD_LIMIT + 1),
        headers={"Content-Type": "application/gzip"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 413, response.text


def test_chunked_upload_over_the_limit_is_413_and_leaves_no_file(api: LiveApi, http):
    def chunks() -> Iterator[bytes]:
        for _ in range(UPLOAD_LIMIT // 8192 + 2):
            yield b"\1" * 8192

    response = http.post(
        f"{api.url}/api/v1/snapshots",
        data=chunks(),
        headers={"Content-Type": "application/gzip"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 413, response.text
    assert _upload_spools(api) == []


def test_upload_that_unpacks_past_the_limit_is_413(api: LiveApi, http):
    data = _tar_gz({"pipeline.yaml": b"name: big\n", "zeros.bin": b"\0" * (UPLOAD_LIMIT + 1)})
    assert len(data) < UPLOAD_LIMIT  # zeros compress: only the unpacked size is over
    response = http.post(
        f"{api.url}/api/v1/snapshots",
        data=data,
        headers={"Content-Type": "application/gzip"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 413, response.text
    assert _upload_spools(api) == []


def test_an_upload_may_be_larger_than_a_json_body(api: LiveApi, http):
    filler = os.urandom(BODY_LIMIT * 2)  # gzip cannot shrink it
    pipeline = b"name: wide\nsteps:\n  s: {type: python_script, script: s.py}\n"
    data = _tar_gz({"pipeline.yaml": pipeline, "s.py": b"", "blob.bin": filler})
    assert BODY_LIMIT < len(data) < UPLOAD_LIMIT
    response = http.post(
        f"{api.url}/api/v1/snapshots",
        data=data,
        headers={"Content-Type": "application/gzip"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 201, response.text


# -- disk use in /metrics -------------------------------------------------------------------


def test_metrics_show_the_state_directory_disk_use_and_free_space(api: LiveApi):
    (api.config.state_dir / "ballast-for-test.bin").write_bytes(os.urandom(512 * 1024))
    text = requests.get(f"{api.url}/metrics", timeout=TIMEOUT).text
    values = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    usage = os.statvfs(api.config.state_dir)
    assert values["pipesched_state_dir_bytes"] >= 512 * 1024
    assert 0 < values["pipesched_state_dir_free_bytes"] <= usage.f_blocks * usage.f_frsize
    assert values["pipesched_state_dir_filesystem_bytes"] == usage.f_blocks * usage.f_frsize
