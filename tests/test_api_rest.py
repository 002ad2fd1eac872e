"""The REST API of issue 6 on a real TCP listener (127.0.0.1, a free port): served by
``serve_tcp`` in an event loop of its own, asked with ``requests``, over a real project and a
real SQLite store. One server for the module; each test makes what it reads."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from scheduler.api.tcp import check_bind
from scheduler.core.errors import PipeschedError
from scheduler.definitions.config import ApiConfig
from scheduler.services.tokens import create_token, revoke_token
from tests.api_server import TRAIN, LiveApi, live_api
from tests.projects import make_project

TIMEOUT = 10


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    project = make_project(tmp_path_factory.mktemp("api"))
    project.pipeline("train", TRAIN, {"train.py": "print('hi')\n"})
    project.pipeline("other", "steps:\n  s: {type: python_script, script: s.py}\n", {"s.py": ""})
    project.schedules(
        "schedules:\n  - {name: nightly, pipeline: train, cron: '0 2 * * *',"
        " parameters: {reg: 0.1}}\n"
    )
    config = project.config()
    with project.store() as store, live_api(config, store) as live:
        store.register_schedules({"nightly": "file"})
        yield live


@pytest.fixture(scope="module")
def token(api: LiveApi) -> str:
    return create_token(api.store, "tests")


@pytest.fixture(scope="module")
def http(token: str) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {token}"
        yield session


def submit(api: LiveApi, http: requests.Session, body: dict, path: str = "train") -> dict:
    response = http.post(f"{api.url}/api/v1/pipelines/{path}/runs", json=body, timeout=TIMEOUT)
    assert response.status_code == 202, response.text
    return response.json()


# -- auth -----------------------------------------------------------------------------------


def test_api_path_without_token_is_401_with_bearer_challenge(api: LiveApi):
    response = requests.get(f"{api.url}/api/v1/runs", timeout=TIMEOUT)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_wrong_token_is_401(api: LiveApi, token: str):
    wrong = token[:-4] + ("aaaa" if not token.endswith("aaaa") else "bbbb")
    response = requests.get(
        f"{api.url}/api/v1/runs", headers={"Authorization": f"Bearer {wrong}"}, timeout=TIMEOUT
    )
    assert response.status_code == 401


def test_revoked_token_is_401(api: LiveApi):
    revoked = create_token(api.store, "short-lived")
    headers = {"Authorization": f"Bearer {revoked}"}
    assert requests.get(f"{api.url}/api/v1/runs", headers=headers, timeout=TIMEOUT).ok
    revoke_token(api.store, "short-lived")
    response = requests.get(f"{api.url}/api/v1/runs", headers=headers, timeout=TIMEOUT)
    assert response.status_code == 401


def test_control_paths_need_a_token_too(api: LiveApi):
    response = requests.post(f"{api.url}/api/v1/schedules/nightly/disable", timeout=TIMEOUT)
    assert response.status_code == 401


def test_healthz_needs_no_token(api: LiveApi):
    response = requests.get(f"{api.url}/healthz", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_non_loopback_host_without_tls_is_refused(api: LiveApi):
    remote = type(api.config)(**{**vars(api.config), "api": ApiConfig(host="0.0.0.0", port=0)})
    with pytest.raises(PipeschedError, match=r"api\.tls"):
        check_bind(remote)


# -- submitting -----------------------------------------------------------------------------


def test_azure_body_answers_202_with_id_status_and_experiment(api: LiveApi, http):
    answer = submit(
        api, http, {"ExperimentName": "nightly-exp", "ParameterAssignments": {"reg": 0.5}}
    )
    assert answer["Status"] == {"StatusCode": "NotStarted"}
    assert answer["ExperimentName"] == "nightly-exp"
    run = api.store.get_run(answer["Id"])
    assert (run.status, run.trigger, run.experiment) == ("queued", "api", "nightly-exp")
    assert run.parameters["reg"] == 0.5


def test_answer_url_is_the_runs_get(api: LiveApi, http):
    answer = submit(api, http, {"ParameterAssignments": {"reg": 1}})
    detail = http.get(answer["url"], timeout=TIMEOUT).json()
    assert detail["id"] == answer["Id"]


def test_data_path_assignment_becomes_a_datastore_path(api: LiveApi, http):
    answer = submit(
        api,
        http,
        {
            "ParameterAssignments": {"reg": 1},
            "DataPathAssignments": {
                "input_path": {"DataStoreName": "default", "RelativePath": "inbox/a.csv"}
            },
        },
    )
    assert api.store.get_run(answer["Id"]).parameters["input_path"] == (
        "datastore://default/inbox/a.csv"
    )


def test_a_dataset_assignment_by_its_id_sets_the_path_parameter(api: LiveApi, http):
    """A dataset's id here is its datastore path (the SDK's ``dataset.id``)."""
    answer = submit(
        api,
        http,
        {
            "ParameterAssignments": {"reg": 1},
            "DataSetDefinitionValueAssignments": {
                "input_path": {"SavedDataSetReference": {"Id": "datastore://default/inbox/b.csv"}}
            },
        },
    )
    assert api.store.get_run(answer["Id"]).parameters["input_path"] == (
        "datastore://default/inbox/b.csv"
    )


def test_a_dataset_id_from_azure_is_422_naming_the_way_out(api: LiveApi, http):
    before = len(api.store.list_runs(pipeline="train", limit=0))
    response = http.post(
        f"{api.url}/api/v1/pipelines/train/runs",
        json={
            "ParameterAssignments": {"reg": 1},
            "DataSetDefinitionValueAssignments": {
                "input_path": {"SavedDataSetReference": {"Id": "7b1e7c9e-0000-4000-8000-1234"}}
            },
        },
        timeout=TIMEOUT,
    )
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body", "DataSetDefinitionValueAssignments", "input_path"]
    assert "DataPathAssignments" in problem["msg"]
    assert len(api.store.list_runs(pipeline="train", limit=0)) == before


def test_bad_parameter_is_422_naming_the_field_and_records_nothing(api: LiveApi, http):
    before = len(api.store.list_runs(pipeline="train", limit=0))
    response = http.post(
        f"{api.url}/api/v1/pipelines/train/runs",
        json={"ParameterAssignments": {"reg": "not a number"}},
        timeout=TIMEOUT,
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "ParameterAssignments", "reg"]
    assert len(api.store.list_runs(pipeline="train", limit=0)) == before


def test_path_leaving_its_datastore_is_422_naming_the_data_path(api: LiveApi, http):
    response = http.post(
        f"{api.url}/api/v1/pipelines/train/runs",
        json={
            "ParameterAssignments": {"reg": 1},
            "DataPathAssignments": {
                "input_path": {"DataStoreName": "default", "RelativePath": "../../etc/passwd"}
            },
        },
        timeout=TIMEOUT,
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "DataPathAssignments", "input_path"]


def test_missing_required_parameter_is_422(api: LiveApi, http):
    response = http.post(f"{api.url}/api/v1/pipelines/train/runs", json={}, timeout=TIMEOUT)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "reg"


def test_unknown_pipeline_is_404(api: LiveApi, http):
    response = http.post(f"{api.url}/api/v1/pipelines/nope/runs", json={}, timeout=TIMEOUT)
    assert response.status_code == 404


def test_unpublished_version_is_404(api: LiveApi, http):
    response = http.post(
        f"{api.url}/api/v1/pipelines/train/versions/9/runs",
        json={"ParameterAssignments": {"reg": 1}},
        timeout=TIMEOUT,
    )
    assert response.status_code == 404


# -- reading --------------------------------------------------------------------------------


def test_run_detail_by_unique_prefix_has_steps_and_parameters(api: LiveApi, http):
    run_id = submit(api, http, {"ParameterAssignments": {"reg": 2}})["Id"]
    detail = http.get(f"{api.url}/api/v1/runs/{run_id[:-2]}", timeout=TIMEOUT)
    assert detail.status_code == 200
    body = detail.json()
    assert body["id"] == run_id
    assert body["parameters"]["reg"] == 2.0
    assert [s["name"] for s in body["steps"]] == ["train"]


def test_unknown_run_is_404(api: LiveApi, http):
    response = http.get(f"{api.url}/api/v1/runs/zzzzzzzzzz", timeout=TIMEOUT)
    assert response.status_code == 404


def test_runs_page_with_before(api: LiveApi, http):
    ids = [submit(api, http, {}, path="other")["Id"] for _ in range(5)]
    newest_first = ids[::-1]
    url = f"{api.url}/api/v1/runs"
    first = http.get(url, params={"pipeline": "other", "limit": 2}, timeout=TIMEOUT).json()
    second = http.get(
        url, params={"pipeline": "other", "limit": 2, "before": first[-1]["id"]}, timeout=TIMEOUT
    ).json()
    assert [r["id"] for r in first + second] == newest_first[:4]


def test_runs_filter_by_status(api: LiveApi, http):
    run_id = submit(api, http, {}, path="other")["Id"]
    api.store.start_run(run_id)
    api.store.finish_run(run_id, "failed", "test")
    failed = http.get(
        f"{api.url}/api/v1/runs", params={"status": "failed", "limit": 1000}, timeout=TIMEOUT
    ).json()
    assert run_id in {r["id"] for r in failed}
    assert {r["status"] for r in failed} == {"failed"}


def test_cancel_ends_a_queued_run(api: LiveApi, http):
    run_id = submit(api, http, {}, path="other")["Id"]
    response = http.post(f"{api.url}/api/v1/runs/{run_id}/cancel", timeout=TIMEOUT)
    assert response.status_code == 200
    assert api.store.get_run(run_id).status == "canceled"


def _started_step(api: LiveApi, http, tmp_path: Path, text: bytes) -> tuple[str, Path]:
    run_id = submit(api, http, {}, path="other")["Id"]
    log = tmp_path / "s.log"
    log.write_bytes(text)
    api.store.start_run(run_id)
    api.store.begin_attempt(run_id, "s", 1, log_path=str(log))
    return run_id, log


def test_logs_tail_gives_the_last_lines(api: LiveApi, http, tmp_path: Path):
    run_id, _ = _started_step(api, http, tmp_path, b"one\ntwo\nthree\n")
    response = http.get(
        f"{api.url}/api/v1/runs/{run_id}/steps/s/logs", params={"tail": 2}, timeout=TIMEOUT
    )
    assert response.status_code == 200
    assert response.content == b"two\nthree\n"


def test_logs_follow_streams_until_the_step_ends(api: LiveApi, http, tmp_path: Path):
    run_id, log = _started_step(api, http, tmp_path, b"first\n")
    received = []
    with http.get(
        f"{api.url}/api/v1/runs/{run_id}/steps/s/logs",
        params={"follow": "true"},
        stream=True,
        timeout=TIMEOUT,
    ) as response:
        chunks = response.iter_content(chunk_size=None)
        received.append(next(chunks))
        with log.open("ab") as handle:
            handle.write(b"second\n")
        threading.Timer(
            0.3, api.store.end_attempt, (run_id, "s", 1), {"status": "completed"}
        ).start()
        received.extend(chunks)  # ends only when the server ends the stream
    assert b"".join(received) == b"first\nsecond\n"


def test_logs_of_unknown_step_is_404(api: LiveApi, http):
    run_id = submit(api, http, {}, path="other")["Id"]
    response = http.get(f"{api.url}/api/v1/runs/{run_id}/steps/nope/logs", timeout=TIMEOUT)
    assert response.status_code == 404


def test_pipelines_lists_names_and_endpoints(api: LiveApi, http):
    pipelines = http.get(f"{api.url}/api/v1/pipelines", timeout=TIMEOUT).json()
    train = next(p for p in pipelines if p["name"] == "train")
    assert train["endpoint"].endswith("/api/v1/pipelines/train/runs")
    assert train["default_version"] is None


def test_schedules_lists_schedules_json_objects(api: LiveApi, http):
    schedules = http.get(f"{api.url}/api/v1/schedules", timeout=TIMEOUT).json()
    assert [s["name"] for s in schedules] == ["nightly"]
    assert len(schedules[0]["next_fire_times"]) == 5


def test_schedule_disable_writes_the_override(api: LiveApi, http):
    response = http.post(f"{api.url}/api/v1/schedules/nightly/disable", timeout=TIMEOUT)
    assert response.status_code == 200
    assert api.store.schedule_states()["nightly"].override is False
    http.post(f"{api.url}/api/v1/schedules/nightly/enable", timeout=TIMEOUT)


def test_schedule_fires_of_unknown_schedule_is_404(api: LiveApi, http):
    response = http.get(f"{api.url}/api/v1/schedules/nope/fires", timeout=TIMEOUT)
    assert response.status_code == 404


def test_metrics_count_runs_by_pipeline_and_status(api: LiveApi, http):
    submit(api, http, {}, path="other")
    text = requests.get(f"{api.url}/metrics", timeout=TIMEOUT).text
    assert 'pipesched_runs{pipeline="other",status="queued"}' in text
    assert "pipesched_queue_depth " in text
    assert "pipesched_file_drop_backlog" in text


def test_openapi_document_lists_the_submit_path(api: LiveApi):
    document = requests.get(f"{api.url}/openapi.json", timeout=TIMEOUT).json()
    assert "/api/v1/pipelines/{name}/runs" in document["paths"]


def test_unix_socket_app_needs_no_token(api: LiveApi):
    with live_api(api.config, api.store, require_token=False) as open_api:
        assert requests.get(f"{open_api.url}/api/v1/runs", timeout=TIMEOUT).status_code == 200


def test_docs_page_is_served(api: LiveApi):
    assert "swagger" in requests.get(f"{api.url}/docs", timeout=TIMEOUT).text.lower()


def test_blank_experiment_name_is_422_naming_it(api: LiveApi, http):
    response = http.post(
        f"{api.url}/api/v1/pipelines/other/runs", json={"ExperimentName": " "}, timeout=TIMEOUT
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "ExperimentName"]


def test_tls_listener_serves_https(tmp_path: Path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    project = make_project(
        tmp_path / "p",
        api={"host": "127.0.0.1", "port": 0, "tls": {"cert": str(cert), "key": str(key)}},
    )
    with project.store() as store, live_api(project.config(), store) as live:
        assert live.url.startswith("https://")
        response = requests.get(f"{live.url}/healthz", verify=str(cert), timeout=TIMEOUT)
    assert response.json()["status"] == "ok"


def test_metrics_parse_and_carry_step_durations(api: LiveApi, http, tmp_path: Path):
    from prometheus_client.parser import text_string_to_metric_families

    run_id, _ = _started_step(api, http, tmp_path, b"")
    api.store.end_attempt(run_id, "s", 1, status="completed", exit_code=0)
    text = requests.get(f"{api.url}/metrics", timeout=TIMEOUT).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    counts = [
        s.value
        for s in families["pipesched_step_duration_seconds"].samples
        if s.name.endswith("_count") and s.labels["pipeline"] == "other"
    ]
    assert counts and counts[0] >= 1


def test_pipeline_file_path_is_not_a_pipeline_name(api: LiveApi, http, tmp_path, monkeypatch):
    # find_pipeline also takes a path to a pipeline.yaml (relative to the daemon's directory).
    (tmp_path / "pipeline.yaml").write_text("name: stray\nsteps: {}\n")
    monkeypatch.chdir(tmp_path)
    response = http.post(f"{api.url}/api/v1/pipelines/pipeline.yaml/runs", json={}, timeout=TIMEOUT)
    assert response.status_code == 404


def test_post_without_a_body_runs_with_defaults(api: LiveApi, http):
    response = http.post(f"{api.url}/api/v1/pipelines/other/runs", timeout=TIMEOUT)
    assert response.status_code == 202
    assert api.store.get_run(response.json()["Id"]).trigger == "api"


def test_absolute_relative_path_is_422(api: LiveApi, http):
    response = http.post(
        f"{api.url}/api/v1/pipelines/train/runs",
        json={
            "ParameterAssignments": {"reg": 1},
            "DataPathAssignments": {
                "input_path": {"DataStoreName": "default", "RelativePath": "/etc/passwd"}
            },
        },
        timeout=TIMEOUT,
    )
    assert response.status_code == 422


def test_50_mb_experiment_name_is_413_and_stores_nothing(api: LiveApi, http):
    before = len(api.store.list_runs(limit=10_000))
    body = {"ExperimentName": "x" * (50 * 1000 * 1000), "ParameterAssignments": {"reg": 0.1}}
    response = http.post(f"{api.url}/api/v1/pipelines/train/runs", json=body, timeout=60)
    assert response.status_code == 413, response.text[:200]
    assert len(api.store.list_runs(limit=10_000)) == before
