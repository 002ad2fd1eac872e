"""schemathesis (property-based, from the live server's own ``/openapi.json``) against the real
API on 127.0.0.1: whatever a client sends that the document allows, and much that it does not,
the server never answers 5xx."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from scheduler.services.tokens import create_token
from tests.api_server import TRAIN, LiveApi, live_api
from tests.projects import make_project

EXAMPLES = 25  # per operation: the whole set stays well under 30 s


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    project = make_project(tmp_path_factory.mktemp("fuzz"))
    project.pipeline("train", TRAIN, {"train.py": "print('hi')\n"})
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
def test_no_server_errors(case: schemathesis.Case, live: LiveApi, token: str):
    # Our token over whatever the case generated for the security scheme: the fuzzing is meant
    # for the handlers, and auth has tests of its own.
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
    response = case.call(base_url=live.url, timeout=5)
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"
