"""A real ``pipesched daemon`` next to schedules it cannot compute fire times for: one bad
schedule never stops the others (at start, from the store, on reload, over REST), a reload is all
or nothing as ``validate`` is, and a SIGHUP never ends in an unretrieved task exception."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_until
from tests.daemon_harness import daemon_request
from tests.projects import Project, make_project

TICK = "steps:\n  s: {type: command, command: ['true'], allow_reuse: false}\n"
GOOD = "  - {name: good, pipeline: tick, interval: 1s}\n"
BAD = [
    "  - {name: tiny, pipeline: tick, interval: 1e-9}\n",
    "  - {name: huge, pipeline: tick, interval: 9223372036854775808}\n",
    "  - {name: ages, pipeline: tick, recurrence: {frequency: Month, interval: 1000000000}}\n",
    "  - {name: [a, b], pipeline: tick, interval: 5s}\n",
]
UNRETRIEVED = "Task exception was never retrieved"


def call(project: Project, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One request to ``/api/v1`` + ``path`` on the daemon of ``project``."""
    return daemon_request(project, method, "/api/v1" + path, body)


def runs_of(project: Project, name: str) -> list:
    with project.store() as store:
        return [r for r in store.list_runs(limit=0) if r.schedule == name]


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = make_project(tmp_path, shutdown_grace="1s")
    project.pipeline("tick", TICK)
    return project


def test_start_with_bad_schedules_serves_the_good_one(project, daemons) -> None:
    project.schedules("schedules:\n" + "".join(BAD) + GOOD)
    daemon = daemons(project).start()
    wait_until(lambda: runs_of(project, "good"), timeout=15)
    invalid = [e["error"] for e in daemon.events("definition_invalid")]
    for line, name in ((2, "interval"), (3, "interval"), (4, "interval"), (5, "name")):
        assert any(f"schedules.yaml:{line}:" in text and name in text for text in invalid), invalid
    listed = {s["name"]: s for s in json.loads(project.cli("schedules", "--json").stdout)}
    for name in ("tiny", "huge", "ages"):
        assert listed[name]["status"] == "error"
        assert "schedules.yaml:" in listed[name]["error"]
    assert listed["good"].get("status") is None and listed["good"]["next_fire_times"]
    status, served = call(project, "GET", "/schedules")
    assert status == 200
    assert {s["name"]: s.get("status") for s in served}["ages"] == "error"
    assert UNRETRIEVED not in daemon.log()
    assert daemon.stop() == 0


def test_a_bad_schedule_kept_in_the_store_does_not_stop_a_start(project, daemons) -> None:
    """What REST saved before it checked fire times: left out with a log line, never a crash."""
    project.schedules("schedules:\n" + GOOD)
    with project.store() as store:
        bad = {"name": "ages", "pipeline": "tick"}
        store.add_api_schedule(
            "ages", {**bad, "recurrence": {"frequency": "Month", "interval": 10**9}}
        )
    daemon = daemons(project).start()
    wait_until(lambda: runs_of(project, "good"), timeout=15)
    left_out = [e["error"] for e in daemon.events("api_schedule_left_out")]
    assert any("ages" in text and "100 years" in text for text in left_out), left_out
    status, served = call(project, "GET", "/schedules")
    assert status == 200
    entry = {s["name"]: s for s in served}["ages"]
    assert (entry["source"], entry["status"]) == ("api", "error")
    assert "100 years" in entry["error"]
    assert daemon.stop() == 0


def test_sighup_with_a_bad_set_keeps_the_old_one(project, daemons) -> None:
    project.schedules("schedules:\n" + GOOD)
    daemon = daemons(project).start()
    wait_until(lambda: runs_of(project, "good"), timeout=15)
    for bad in BAD:
        project.schedules(
            "schedules:\n" + GOOD + bad + "  - {name: new, pipeline: tick, interval: 1s}\n"
        )
        refused = len(daemon.events("reload_refused"))
        daemon.signal(signal.SIGHUP)
        wait_until(lambda n=refused: len(daemon.events("reload_refused")) > n, timeout=15)
        assert any("schedules.yaml:3:" in e["error"] for e in daemon.events("reload_refused"))
    # A broken pipeline that no schedule runs: validate refuses it, so a reload does too.
    project.pipeline("unused", "steps:\n  s: {type: command}\n")
    project.schedules("schedules:\n" + GOOD + "  - {name: new, pipeline: tick, interval: 1s}\n")
    refused = len(daemon.events("reload_refused"))
    daemon.signal(signal.SIGHUP)
    wait_until(lambda: len(daemon.events("reload_refused")) > refused, timeout=15)
    assert any(
        "unused" in e["error"] and "pipeline.yaml:" in e["error"]
        for e in daemon.events("reload_refused")[refused:]
    )
    assert not daemon.events("reload_done")
    before = len(runs_of(project, "good"))
    wait_until(lambda: len(runs_of(project, "good")) > before, timeout=15)  # the old set serves
    assert not runs_of(project, "new")
    assert project.cli("validate").returncode == 1
    # Fixed: the reload goes through, all of it.
    (project.root / "pipelines" / "unused" / "pipeline.yaml").write_text(TICK)
    daemon.signal(signal.SIGHUP)
    wait_until(lambda: daemon.events("reload_done"), timeout=15)
    wait_until(lambda: runs_of(project, "new"), timeout=15)
    assert UNRETRIEVED not in daemon.log()
    assert daemon.stop() == 0


REST_BAD = [
    ({"interval": 1e-9}, "interval"),
    ({"interval": 9223372036854775808}, "interval"),
    ({"recurrence": {"frequency": "Month", "interval": 1000000000}}, "recurrence"),
    ({"on_change": {"path": ".pipesched/x"}}, "on_change"),
    ({"on_change": {"path": "in\x00box"}}, "on_change"),
    ({"name": ["a", "b"]}, "name"),
]


def test_rest_create_of_a_bad_schedule_is_422_and_saves_nothing(project, daemons) -> None:
    project.schedules("schedules:\n" + GOOD)
    daemon = daemons(project).start()
    for definition, field in REST_BAD:
        body = {"name": "bad", "pipeline": "tick", **definition}
        status, answer = call(project, "POST", "/schedules", body)
        assert status == 422, (definition, answer)
        assert [p["loc"][:2] for p in answer["detail"]] == [["body", field]], answer
        with project.store() as store:
            assert store.api_schedules() == []
    status, served = call(project, "GET", "/schedules")
    assert status == 200 and [s["name"] for s in served] == ["good"]
    wait_until(lambda: runs_of(project, "good"), timeout=15)
    assert UNRETRIEVED not in daemon.log()
    assert daemon.stop() == 0
