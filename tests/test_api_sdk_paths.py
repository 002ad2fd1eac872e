"""The REST paths the SDK's remote workspace uses: upload a saved pipeline folder (tar.gz), run
it, publish it or what a finished run ran, move an endpoint's default, list runs by experiment.
Real HTTP on 127.0.0.1 with a real token, over a real project and SQLite store; the stand-in
daemon records runs queued, and one test runs an upload to the end through a real daemon."""

from __future__ import annotations

import io
import itertools
import socket
import tarfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import text

from scheduler.services.tokens import create_token
from scheduler.store import queries
from tests.api_server import LiveApi, live_api
from tests.conftest import wait_until
from tests.projects import Project, make_project

TIMEOUT = 10
SAVED = """\
name: {name}
parameters:
  reg: {{type: float, default: 0.1}}
data:
  out: {{}}
steps:
  say:
    type: python_script
    source_directory: scripts
    script: say.py
    arguments: ["${{{{data.out}}}}", "${{{{parameters.reg}}}}"]
    outputs: [out]
"""
SAY = (
    "import pathlib, sys\npathlib.Path(sys.argv[1], 'said.txt').write_text('reg=' + sys.argv[2])\n"
)
_names = itertools.count()


def archive(tmp_path: Path, name: str, definition: str | None = None) -> bytes:
    """A tar.gz of what ``Pipeline.save(folder)`` writes, the folder at the archive's top."""
    folder = tmp_path / f"saved-{name}"
    (folder / "scripts").mkdir(parents=True)
    (folder / "pipeline.yaml").write_text(definition or SAVED.format(name=name))
    (folder / "scripts" / "say.py").write_text(SAY)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname=name)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    project = make_project(tmp_path_factory.mktemp("sdk-api"))
    with project.store() as store, live_api(project.config(), store) as live:
        yield live


@pytest.fixture(scope="module")
def http(api: LiveApi) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {create_token(api.store, 'sdk')}"
        yield session


@pytest.fixture
def name() -> str:
    """A pipeline name of this test's own: the server and its store live for the module."""
    return f"sdk-{next(_names)}"


def upload(api: LiveApi, http: requests.Session, data: bytes) -> requests.Response:
    return http.post(
        f"{api.url}/api/v1/snapshots",
        data=data,
        headers={"Content-Type": "application/gzip"},
        timeout=TIMEOUT,
    )


def uploaded(api: LiveApi, http, tmp_path: Path, name: str) -> str:
    response = upload(api, http, archive(tmp_path, name))
    assert response.status_code == 201, response.text
    return response.json()["id"]


def run_snapshot(api: LiveApi, http, snapshot_id: str, body: dict | None = None):
    return http.post(
        f"{api.url}/api/v1/snapshots/{snapshot_id}/runs", json=body or {}, timeout=TIMEOUT
    )


# -- uploading ----------------------------------------------------------------------------------


def test_upload_without_a_token_is_401(api: LiveApi, tmp_path, name):
    response = requests.post(
        f"{api.url}/api/v1/snapshots", data=archive(tmp_path, name), timeout=TIMEOUT
    )
    assert response.status_code == 401


def test_upload_answers_201_with_id_pipeline_and_steps(api: LiveApi, http, tmp_path, name):
    response = upload(api, http, archive(tmp_path, name))
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["pipeline"], body["steps"]) == (name, ["say"])
    assert (api.config.state_dir / "snapshots" / body["id"]).is_dir()


def test_the_same_upload_twice_gets_the_same_id(api: LiveApi, http, tmp_path, name):
    data = archive(tmp_path, name)
    assert upload(api, http, data).json()["id"] == upload(api, http, data).json()["id"]


def test_bad_definition_is_422_with_each_error_at_its_file_line_column(
    api: LiveApi, http, tmp_path, name
):
    broken = SAVED.format(name=name).replace("script: say.py", "script: gone.py")
    broken = broken.replace("outputs: [out]", "outputs: [out]\n    compute: nowhere")
    response = upload(api, http, archive(tmp_path, name, broken))
    assert response.status_code == 422
    messages = [problem["msg"] for problem in response.json()["detail"]]
    assert len(messages) == 2
    assert all(m.startswith(f"{name}/pipeline.yaml:") and ": error: " in m for m in messages)
    assert any("gone.py" in m for m in messages) and any("nowhere" in m for m in messages)


def test_not_a_tar_gz_is_422(api: LiveApi, http):
    response = upload(api, http, b"steps: {}")
    assert response.status_code == 422
    assert "not a readable tar" in response.json()["detail"][0]["msg"]


def test_upload_declaring_more_than_the_cap_is_413_before_it_is_sent(api: LiveApi, token_header):
    # requests would send the whole body; a raw request shows the refusal comes from the header.
    parts = urlsplit(api.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT) as sock:
        sock.sendall(
            b"POST /api/v1/snapshots HTTP/1.1\r\nHost: test\r\n"
            + token_header
            + b"Content-Type: application/gzip\r\nContent-Length: 300000000\r\n\r\n"
        )
        status_line = sock.makefile("rb").readline()
    assert b" 413 " in status_line


@pytest.fixture
def token_header(http: requests.Session) -> bytes:
    return f"Authorization: {http.headers['Authorization']}\r\n".encode()


# -- running a snapshot -------------------------------------------------------------------------


def test_running_a_snapshot_records_a_queued_api_run_of_it(api: LiveApi, http, tmp_path, name):
    snapshot_id = uploaded(api, http, tmp_path, name)
    response = run_snapshot(
        api, http, snapshot_id, {"ExperimentName": "notebook", "ParameterAssignments": {"reg": 2}}
    )
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["Status"] == {"StatusCode": "NotStarted"}
    run = api.store.get_run(answer["Id"])
    assert (run.pipeline, run.content_hash, run.trigger) == (name, snapshot_id, "api")
    assert (run.experiment, run.parameters["reg"], run.version) == ("notebook", 2.0, None)


def test_bad_parameter_for_a_snapshot_is_422_and_records_nothing(
    api: LiveApi, http, tmp_path, name
):
    snapshot_id = uploaded(api, http, tmp_path, name)
    response = run_snapshot(api, http, snapshot_id, {"ParameterAssignments": {"reg": "x"}})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "ParameterAssignments", "reg"]
    assert not api.store.list_runs(pipeline=name)


def test_running_an_unknown_snapshot_is_404(api: LiveApi, http):
    response = run_snapshot(api, http, "0123456789abcdef")
    assert response.status_code == 404
    assert "no pipeline snapshot" in response.json()["detail"]


# -- publishing ---------------------------------------------------------------------------------


def publish(api: LiveApi, http, name: str, body: dict) -> requests.Response:
    return http.post(f"{api.url}/api/v1/pipelines/{name}/versions", json=body, timeout=TIMEOUT)


def test_publishing_a_snapshot_answers_the_version_and_its_endpoint(
    api: LiveApi, http, tmp_path, name
):
    snapshot_id = uploaded(api, http, tmp_path, name)
    response = publish(api, http, name, {"snapshot": snapshot_id, "description": "from code"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["id"], body["is_default"], body["description"]) == (f"{name}@1", True, "from code")
    assert body["endpoint"].endswith(f"/api/v1/pipelines/{name}/versions/1/runs")
    ran = http.post(f"{api.url}/api/v1/pipelines/{name}/runs", json={}, timeout=TIMEOUT)
    assert ran.status_code == 202, ran.text
    assert api.store.get_run(ran.json()["Id"]).version == "1"


def test_publishing_a_taken_version_is_409_unless_the_content_is_the_same(
    api: LiveApi, http, tmp_path, name
):
    snapshot_id = uploaded(api, http, tmp_path, name)
    first = publish(api, http, name, {"snapshot": snapshot_id, "version": "v1"})
    assert first.ok
    same = publish(api, http, name, {"snapshot": snapshot_id, "version": "v1"})
    assert same.status_code == 201 and same.json() == first.json()
    changed = SAVED.format(name=name).replace("default: 0.1", "default: 0.2")
    response = upload(api, http, archive(tmp_path / "changed", name, changed))
    assert response.status_code == 201, response.text
    again = publish(api, http, name, {"snapshot": response.json()["id"], "version": "v1"})
    assert again.status_code == 409
    detail = again.json()["detail"]
    assert "already has a published version 'v1' with different content" in detail
    assert "the next free label is 'v2'" in detail


def test_publishing_under_a_bad_version_label_is_422_naming_it(api: LiveApi, http, tmp_path, name):
    snapshot_id = uploaded(api, http, tmp_path, name)
    response = publish(api, http, name, {"snapshot": snapshot_id, "version": "../x"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "version"]


def test_publishing_a_completed_run_publishes_its_definition(api: LiveApi, http, tmp_path, name):
    snapshot_id = uploaded(api, http, tmp_path, name)
    run_id = run_snapshot(api, http, snapshot_id).json()["Id"]
    api.store.start_run(run_id)
    api.store.finish_run(run_id, "completed")
    response = http.post(
        f"{api.url}/api/v1/runs/{run_id}/publish",
        json={"name": f"{name}-pub", "version": "7", "description": None},
        timeout=TIMEOUT,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["id"], body["pipeline"], body["version"]) == (f"{name}-pub@7", f"{name}-pub", "7")
    assert body["endpoint"].endswith(f"/api/v1/pipelines/{name}-pub/versions/7/runs")


def test_a_run_that_has_not_finished_publishes_its_definition(api: LiveApi, http, tmp_path, name):
    run_id = run_snapshot(api, http, uploaded(api, http, tmp_path, name)).json()["Id"]
    assert api.store.get_run(run_id).status == "queued"
    body = {"version": "early"}
    response = http.post(f"{api.url}/api/v1/runs/{run_id}/publish", json=body, timeout=TIMEOUT)
    assert response.status_code == 201, response.text
    assert response.json()["id"] == f"{name}@early"
    assert response.json()["content_hash"] == api.store.get_run(run_id).content_hash


def test_setting_the_default_version_moves_the_endpoint(api: LiveApi, http, tmp_path, name):
    snapshot_id = uploaded(api, http, tmp_path, name)
    for _ in range(2):
        assert publish(api, http, name, {"snapshot": snapshot_id}).ok
    url = f"{api.url}/api/v1/pipelines/{name}/default"
    response = http.put(url, json={"version": "2"}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    assert response.json()["default_version"] == "2"
    ran = http.post(f"{api.url}/api/v1/pipelines/{name}/runs", json={}, timeout=TIMEOUT)
    assert api.store.get_run(ran.json()["Id"]).version == "2"


def test_setting_an_unpublished_default_version_is_404(api: LiveApi, http, tmp_path, name):
    assert publish(api, http, name, {"snapshot": uploaded(api, http, tmp_path, name)}).ok
    response = http.put(
        f"{api.url}/api/v1/pipelines/{name}/default", json={"version": "9"}, timeout=TIMEOUT
    )
    assert response.status_code == 404


# -- runs by experiment -------------------------------------------------------------------------


def test_runs_filter_by_experiment(api: LiveApi, http, tmp_path, name):
    snapshot_id = uploaded(api, http, tmp_path, name)
    wanted = {
        run_snapshot(api, http, snapshot_id, {"ExperimentName": f"{name}-exp"}).json()["Id"]
        for _ in range(2)
    }
    run_snapshot(api, http, snapshot_id, {"ExperimentName": "elsewhere"})
    listed = http.get(
        f"{api.url}/api/v1/runs", params={"experiment": f"{name}-exp"}, timeout=TIMEOUT
    ).json()
    assert {r["id"] for r in listed} == wanted
    assert {r["experiment"] for r in listed} == {f"{name}-exp"}


def test_experiment_filter_uses_its_index_newest_first(api: LiveApi):
    """The (experiment, id) index gives an experiment's runs newest first: no scan of every
    run, no sort."""
    statement = queries.list_runs_statement(experiment="x", limit=20)
    compiled = statement.compile(api.store.engine, compile_kwargs={"literal_binds": True})
    with api.store.engine.connect() as conn:
        plan = " ".join(
            str(row[-1]) for row in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
        )
    assert "USE TEMP B-TREE" not in plan
    assert "ix_runs_experiment_id" in plan


# -- the real daemon ----------------------------------------------------------------------------


def test_an_uploaded_snapshot_runs_to_completion_in_the_daemon(tmp_path: Path, daemons):
    project: Project = make_project(tmp_path / "home")
    daemon = daemons(project).start()
    (listening,) = wait_until(lambda: daemon.events("api_listening"), timeout=15)
    created = project.cli("token", "create", "sdk")
    assert created.returncode == 0, created.stderr
    headers = {"Authorization": f"Bearer {created.stdout.strip().splitlines()[-1]}"}
    url = listening["url"]
    stored = requests.post(
        f"{url}/api/v1/snapshots",
        data=archive(tmp_path, "from-notebook"),
        headers={**headers, "Content-Type": "application/gzip"},
        timeout=TIMEOUT,
    )
    assert stored.status_code == 201, stored.text
    ran = requests.post(
        f"{url}/api/v1/snapshots/{stored.json()['id']}/runs",
        json={"ParameterAssignments": {"reg": 0.5}},
        headers=headers,
        timeout=TIMEOUT,
    )
    assert ran.status_code == 202, ran.text

    def finished() -> dict | None:
        detail = requests.get(ran.json()["url"], headers=headers, timeout=TIMEOUT).json()
        return detail if detail["status"] in {"completed", "failed", "canceled"} else None

    detail = wait_until(finished, timeout=30, interval=0.1)
    assert detail["status"] == "completed", textwrap.shorten(str(detail), 500)
    assert detail["content_hash"] == stored.json()["id"]
    said = Path(detail["steps"][0]["outputs"]["out"]) / "said.txt"
    assert said.read_text() == "reg=0.5"
