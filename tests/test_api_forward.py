"""A standby's API: reads are its own, changes are handed on to the leader with the caller's
token, and what cannot be handed on is a 503 naming the leader. Two real servers on
127.0.0.1 over one real store: a leader (the API's stand-in daemon) and a standby (the
daemon's own ``StandbyControls``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import requests

from scheduler.core.clock import SYSTEM_CLOCK
from scheduler.daemon.standby_api import StandbyControls
from scheduler.services.tokens import create_token
from scheduler.store.records import Leadership
from tests.api_server import TRAIN, LiveApi, live_api
from tests.projects import make_project

SCHEDULES = """
schedules:
  - name: nightly
    pipeline: train
    cron: "0 2 * * *"
"""


@dataclass
class Pair:
    leader: LiveApi
    standby: LiveApi
    token: str
    known: list[Leadership]


def leadership(api_url: str | None) -> Leadership:
    now = datetime.now(UTC)
    return Leadership(3, "leader-host:42:t", "leader-host", 42, now, api_url, now, now)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    project = make_project(tmp_path_factory.mktemp("forward") / "p")
    project.pipeline("train", TRAIN, {"train.py": "print('trained')\n"})
    project.schedules(SCHEDULES)
    config = project.config()
    with project.store() as store, live_api(config, store) as leader:
        known = [leadership(leader.url)]
        controls = StandbyControls(
            datetime.now(UTC), lambda: known[-1], config, store, SYSTEM_CLOCK
        )
        with live_api(
            config, store, control=controls, forward_to=lambda: known[-1].api_url
        ) as standby:
            yield Pair(leader, standby, create_token(store, "forward-tests"), known)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_standby_says_it_is_one_and_who_leads(pair: Pair) -> None:
    health = requests.get(f"{pair.standby.url}/healthz", timeout=10).json()
    assert health["role"] == "standby"
    assert health["leader"]["host"] == "leader-host"
    assert health["epoch"] == 3


def test_a_standby_answers_reads_itself(pair: Pair) -> None:
    answer = requests.get(
        f"{pair.standby.url}/api/v1/schedules", headers=bearer(pair.token), timeout=10
    )
    assert answer.status_code == 200
    assert [s["name"] for s in answer.json()] == ["nightly"]


def test_a_change_sent_to_a_standby_is_made_by_the_leader(pair: Pair) -> None:
    answer = requests.post(
        f"{pair.standby.url}/api/v1/pipelines/train/runs",
        headers=bearer(pair.token),
        json={"ParameterAssignments": {"reg": 0.5}},
        timeout=10,
    )
    assert answer.status_code == 202, answer.text
    run = answer.json()
    assert run["url"].startswith(pair.leader.url)  # the leader recorded it
    assert pair.leader.store.get_run(run["Id"]).parameters["reg"] == 0.5


def test_the_leaders_refusal_comes_back_as_it_was(pair: Pair) -> None:
    wrong = requests.post(
        f"{pair.standby.url}/api/v1/pipelines/train/runs",
        headers=bearer(pair.token),
        json={"ParameterAssignments": {"nope": 1}},
        timeout=10,
    )
    assert wrong.status_code == 422
    assert "nope" in wrong.text
    revoked = requests.post(
        f"{pair.standby.url}/api/v1/schedules/nightly/disable",
        headers=bearer("pst_000000000000_" + "x" * 43),
        timeout=10,
    )
    assert revoked.status_code == 401  # the leader checks the token


def test_without_a_leader_to_reach_a_change_is_a_503_naming_it(pair: Pair) -> None:
    pair.known.append(leadership("http://127.0.0.1:9"))  # nothing listens on the discard port
    try:
        answer = requests.post(
            f"{pair.standby.url}/api/v1/schedules/nightly/disable",
            headers=bearer(pair.token),
            timeout=10,
        )
    finally:
        pair.known.pop()
    assert answer.status_code == 503
    assert "standby" in answer.json()["detail"]
    assert "leader-host:42 at http://127.0.0.1:9" in answer.json()["detail"]
