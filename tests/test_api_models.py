"""``/api/v1/models`` over real HTTP on 127.0.0.1 with a real token, over a real project and
SQLite store: list and read versions, upload files and register them, register a run's step
file, download a version's archive; unsafe archives, bad names and missing things are refused
with the documented statuses."""

from __future__ import annotations

import io
import itertools
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from scheduler.services.tokens import create_token
from tests.api_server import LiveApi, live_api
from tests.model_projects import model_project
from tests.projects import Project

TIMEOUT = 10
UPLOAD_LIMIT = 256 * 1024
_names = itertools.count()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    limits = {"host": "127.0.0.1", "port": 0, "max_upload_bytes": UPLOAD_LIMIT}
    return model_project(tmp_path_factory.mktemp("models-api"), api=limits)


@pytest.fixture(scope="module")
def api(project: Project) -> Iterator[LiveApi]:
    with project.store() as store, live_api(project.config(), store) as live:
        yield live


@pytest.fixture(scope="module")
def http(api: LiveApi) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {create_token(api.store, 'models')}"
        yield session


@pytest.fixture
def name() -> str:
    """A model name of this test's own: the server and its store live for the module."""
    return f"model-{next(_names)}"


def tar(files: dict[str, bytes], *, gzip: bool = True) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gzip else "w") as archive:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def upload(api: LiveApi, http: requests.Session, name: str, data: bytes) -> requests.Response:
    return http.post(
        f"{api.url}/api/v1/models/{name}/files",
        data=data,
        headers={"Content-Type": "application/gzip"},
        timeout=TIMEOUT,
    )


def register(api: LiveApi, http, name: str, files: dict[str, bytes], **body) -> dict:
    uploaded = upload(api, http, name, tar(files))
    assert uploaded.status_code == 201, uploaded.text
    answer = http.post(
        f"{api.url}/api/v1/models/{name}",
        json={"upload": uploaded.json()["upload"], **body},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_every_models_path_needs_the_token(api: LiveApi, name):
    for method, path in [
        ("GET", "/api/v1/models"),
        ("GET", f"/api/v1/models/{name}"),
        ("GET", f"/api/v1/models/{name}/1"),
        ("GET", f"/api/v1/models/{name}/1/files"),
        ("POST", f"/api/v1/models/{name}/files"),
        ("POST", f"/api/v1/models/{name}"),
    ]:
        response = requests.request(method, f"{api.url}{path}", timeout=TIMEOUT)
        assert response.status_code == 401, (method, path)


def test_uploaded_files_become_versions_one_and_two(api: LiveApi, http, name):
    first = register(api, http, name, {"model.pkl": b"v1"}, tags={"area": "x"}, description="first")
    second = register(api, http, name, {"model.pkl": b"v2"}, properties={"mse": "1.5"})
    assert (first["version"], second["version"]) == (1, 2)
    assert (first["tags"], first["description"], first["run_id"]) == ({"area": "x"}, "first", None)
    assert Path(second["path"]).read_bytes() == b"v2"
    assert Path(second["path"]).is_relative_to(api.config.default_datastore.path)
    latest = http.get(f"{api.url}/api/v1/models/{name}", timeout=TIMEOUT).json()
    assert latest == second
    assert http.get(f"{api.url}/api/v1/models/{name}/1", timeout=TIMEOUT).json() == first
    listed = http.get(f"{api.url}/api/v1/models", params={"name": name}, timeout=TIMEOUT).json()
    assert listed == [second, first]


def test_list_filters_by_repeated_tags_and_latest(api: LiveApi, http, name):
    register(api, http, name, {"m.pkl": b"1"}, tags={"stage": "dev"})
    register(api, http, name, {"m.pkl": b"2"}, tags={"stage": "prod", "owner": "me"})
    url = f"{api.url}/api/v1/models"
    both = http.get(url, params=[("name", name), ("tag", "stage"), ("tag", "owner")]).json()
    assert [m["version"] for m in both] == [2]
    dev = http.get(url, params={"name": name, "tag": "stage=dev"}, timeout=TIMEOUT).json()
    assert [m["version"] for m in dev] == [1]
    latest = http.get(url, params={"name": name, "latest": "true"}, timeout=TIMEOUT).json()
    assert [m["version"] for m in latest] == [2]


def test_a_folder_comes_back_as_the_same_folder(api: LiveApi, http, name, tmp_path):
    model = register(api, http, name, {"saved/graph.pb": b"g", "saved/assets/v.txt": b"a"})
    assert model["path"].endswith(f"/{name}/1/saved")
    response = http.get(f"{api.url}/api/v1/models/{name}/1/files", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(response.content)) as archive:
        archive.extractall(tmp_path, filter="data")
    assert (tmp_path / "saved" / "graph.pb").read_bytes() == b"g"
    assert (tmp_path / "saved" / "assets" / "v.txt").read_bytes() == b"a"


def test_a_run_step_file_is_registered_with_the_run_and_step(api: LiveApi, project, http, name):
    ran = project.cli("run", "train-only", "--json")
    assert ran.returncode == 0, ran.stderr
    run_id = json.loads(ran.stdout)["id"]
    answer = http.post(
        f"{api.url}/api/v1/models/{name}",
        json={"run_id": run_id, "model_path": "outputs/model.pkl", "tags": {"k": "v"}},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 201, answer.text
    model = answer.json()
    assert (model["run_id"], model["step"], model["tags"]) == (run_id, "train", {"k": "v"})
    assert Path(model["path"]).read_text() == "trained in a run"
    shown = http.get(f"{api.url}/api/v1/runs/{run_id}", timeout=TIMEOUT).json()
    assert shown["models"] == [model]
    missing = http.post(
        f"{api.url}/api/v1/models/{name}",
        json={"run_id": run_id, "model_path": "outputs/none.pkl"},
        timeout=TIMEOUT,
    )
    assert missing.status_code == 404
    assert "has no outputs/none.pkl" in missing.json()["detail"]


@pytest.mark.parametrize(
    ("files", "words"),
    [
        ({"../escape.pkl": b"x"}, "would land outside"),
        ({"/etc/evil": b"x"}, "would land outside"),
        ({"a.pkl": b"1", "b.pkl": b"2"}, "must hold one file or folder"),
    ],
)
def test_an_unsafe_archive_is_422_and_leaves_nothing(api: LiveApi, http, name, files, words):
    root = api.config.default_datastore.path
    before = sorted(root.rglob("*"))
    answer = upload(api, http, name, tar(files))
    assert answer.status_code == 422
    assert words in answer.json()["detail"][0]["msg"]
    assert sorted(root.rglob("*")) == before


def test_a_link_in_the_archive_is_refused(api: LiveApi, http, name):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("model/link")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(info)
    answer = upload(api, http, name, buffer.getvalue())
    assert answer.status_code == 422
    assert "is not a file or a folder" in answer.json()["detail"][0]["msg"]


@pytest.mark.parametrize("body", [b"pickled bytes", b""])
def test_not_a_tar_archive_is_422(api: LiveApi, http, name, body):
    answer = upload(api, http, name, body)
    assert answer.status_code == 422
    assert "not a readable tar archive" in answer.json()["detail"][0]["msg"]


def test_bad_names_versions_and_bodies_are_refused(api: LiveApi, http, name):
    bad_name = upload(api, http, "-bad", tar({"m": b"1"}))
    assert bad_name.status_code == 422
    assert bad_name.json()["detail"][0]["loc"] == ["path", "name"]
    assert http.get(f"{api.url}/api/v1/models/{name}/0", timeout=TIMEOUT).status_code == 422
    assert http.get(f"{api.url}/api/v1/models/{name}/x", timeout=TIMEOUT).status_code == 404
    for body in ({}, {"upload": "upload-" + "0" * 32, "run_id": "r"}, {"upload": "../x"}):
        refused = http.post(f"{api.url}/api/v1/models/{name}", json=body, timeout=TIMEOUT)
        assert refused.status_code == 422, body
    never = "upload-" + "0" * 32
    unknown = http.post(f"{api.url}/api/v1/models/{name}", json={"upload": never})
    assert unknown.status_code == 404
    assert f"no model upload '{never}'" in unknown.json()["detail"]


def test_unknown_models_are_404_naming_what_exists(api: LiveApi, http, name):
    assert http.get(f"{api.url}/api/v1/models/{name}", timeout=TIMEOUT).status_code == 404
    register(api, http, name, {"m.pkl": b"1"})
    missing = http.get(f"{api.url}/api/v1/models/{name}/4", timeout=TIMEOUT)
    assert missing.status_code == 404
    assert missing.json()["detail"] == f"model '{name}' has no version 4 (versions: 1)"
    gone = http.get(f"{api.url}/api/v1/models/{name}/4/files", timeout=TIMEOUT)
    assert gone.status_code == 404


def test_an_upload_over_the_limit_is_413_and_leaves_no_file(api: LiveApi, http, name):
    def chunks() -> Iterator[bytes]:
        for _ in range(UPLOAD_LIMIT // 8192 + 2):
            yield b"\1" * 8192

    response = http.post(
        f"{api.url}/api/v1/models/{name}/files",
        data=chunks(),  # chunked transfer: refused while it arrives
        headers={"Content-Type": "application/gzip"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 413, response.text
    staging = api.config.default_datastore.path / ".pipesched" / "models" / ".staging"
    assert [p.name for p in staging.iterdir() if p.name.startswith("spool-")] == []


def test_an_archive_that_unpacks_over_the_limit_is_413(api: LiveApi, http, name):
    bomb = tar({"model.pkl": b"\0" * (UPLOAD_LIMIT + 1)})
    assert len(bomb) < UPLOAD_LIMIT
    answer = upload(api, http, name, bomb)
    assert answer.status_code == 413
    assert "unpacks to more than" in answer.json()["detail"]


def test_the_document_lists_every_status_of_the_models_paths(api: LiveApi):
    paths = requests.get(f"{api.url}/openapi.json", timeout=TIMEOUT).json()["paths"]
    assert set(paths["/api/v1/models"]["get"]["responses"]) >= {"200", "401", "422"}
    assert set(paths["/api/v1/models/{name}/{version}"]["get"]["responses"]) >= {
        "200",
        "401",
        "404",
        "422",
    }
    register_statuses = set(paths["/api/v1/models/{name}"]["post"]["responses"])
    assert register_statuses >= {"201", "400", "401", "404", "409", "413", "422"}
    upload_body = paths["/api/v1/models/{name}/files"]["post"]["requestBody"]["content"]
    assert "application/x-tar" in upload_body
