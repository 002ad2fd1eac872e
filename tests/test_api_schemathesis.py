"""schemathesis (property-based, from the live server's own ``/openapi.json``) against the real
API on 127.0.0.1, with all its checks on: every answer's status is one the document lists for
its path, with the documented content type and body schema; what the schema forbids is
refused with 4xx; a missing token is 401; a 405 carries ``Allow``; and never a 5xx."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.meta import CoveragePhaseData, CoverageScenario

from scheduler.services.tokens import create_token
from tests.api_server import TRAIN, LiveApi, live_api
from tests.projects import make_project

EXAMPLES = 25  # per operation: the whole set stays well under 60 s


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    project = make_project(tmp_path_factory.mktemp("fuzz"))
    project.pipeline("train", TRAIN, {"train.py": "print('hi')\n"})
    # The pipeline of the document's own example schedule: the example is valid here.
    project.pipeline(
        "diabetes-training",
        "steps:\n  s: {type: python_script, script: s.py}\n",
        {"s.py": "print('hi')\n"},
    )
    project.schedules(
        "schedules:\n  - {name: nightly, pipeline: train, cron: '0 2 * * *',"
        " parameters: {reg: 0.1}}\n"
    )
    with project.store() as store, live_api(project.config(), store) as api:
        store.register_schedules({"nightly": "file"})
        yield api


@pytest.fixture(scope="module")
def token(live: LiveApi) -> str:
    return create_token(live.store, "fuzz")


@pytest.fixture(scope="module")
def api_schema(live: LiveApi) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{live.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
@pytest.mark.slow
def test_api_conforms_to_its_document(case: schemathesis.Case, live: LiveApi, token: str):
    # Our token over whatever the case generated for the security scheme, except in the cases
    # that leave the header out on purpose (they expect 401).
    headers = {} if _drops_authorization(case) else {"Authorization": f"Bearer {token}"}
    # What the schema cannot say is refused with 422 even when the schema allows it: a snapshot
    # is a tar.gz of a pipeline folder and a model upload a tar of one file or folder ("binary"
    # to a schema; tests/test_api_sdk_paths.py and tests/test_api_models.py send real ones), and
    # a schedule names a pipeline that exists and gives exactly one trigger (and one that is
    # changed must exist first); an endpoint's version is a published pipeline, and an
    # endpoint's name must be able to name a folder.
    semantic = {
        ("POST", "/api/v1/snapshots"),
        ("POST", "/api/v1/schedules"),
        ("PUT", "/api/v1/schedules/{name}"),
        ("POST", "/api/v1/models/{name}/files"),
        ("POST", "/api/v1/endpoints/{name}/versions"),
        ("PUT", "/api/v1/endpoints/{name}/name"),
    }
    excluded = [positive_data_acceptance] if (case.method, case.operation.path) in semantic else []
    case.call_and_validate(base_url=live.url, timeout=5, headers=headers, excluded_checks=excluded)


def _drops_authorization(case: schemathesis.Case) -> bool:
    """A case that leaves the Authorization header out on purpose."""
    if "authorization" in {name.lower() for name in case.headers or {}}:
        return False
    meta = case.meta
    if meta is None:
        return False
    data = meta.phase.data
    if isinstance(data, CoveragePhaseData):
        return (
            data.parameter or ""
        ).lower() == "authorization" and data.scenario == CoverageScenario.MISSING_PARAMETER
    return meta.is_negative_at(ParameterLocation.HEADER)


def test_every_api_operation_documents_401_and_every_write_413(live: LiveApi):
    document = requests.get(f"{live.url}/openapi.json", timeout=10).json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            if path.startswith("/api/"):
                assert "401" in statuses, (method, path)
            if method != "get":
                assert {"400", "413", "422"} <= statuses, (method, path)
    assert "503" in document["paths"]["/healthz"]["get"]["responses"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("OPTIONS", "/api/v1/schedules", "GET, POST"),
        ("POST", "/api/v1/schedules/nightly", "DELETE, GET, PUT"),
        ("OPTIONS", "/api/v1/runs", "GET"),
        ("DELETE", "/healthz", "GET"),
    ],
)
def test_405_names_every_method_of_the_path(live: LiveApi, token: str, method, path, allow):
    headers = {"Authorization": f"Bearer {token}"}
    response = requests.request(method, f"{live.url}{path}", headers=headers, timeout=10)
    assert response.status_code == 405
    assert response.headers["Allow"] == allow
