"""Schedules created through the REST API, against a real ``pipesched daemon``: served at once
without a restart, surviving one, firing on (test-clock) time or when a file lands (real
watchdog), and stopped by DELETE. Requests go over the daemon's unix socket with http.client."""

from __future__ import annotations

import json
import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess, daemon_request, set_clock
from tests.projects import Project, make_project

PIPELINE = """
parameters:
  input_path: {type: path, default: inbox}
steps:
  s: {type: command, command: ["true", "${{parameters.input_path}}"], allow_reuse: false}
"""


def call(project: Project, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One request to ``/api/v1`` + ``path`` on the daemon of ``project``."""
    return daemon_request(project, method, "/api/v1" + path, body)


def listed(project: Project) -> dict[str, dict]:
    result = project.cli("schedules", "--json")
    assert result.returncode == 0, result.stderr
    return {s["name"]: s for s in json.loads(result.stdout)}


def fires(project: Project, name: str) -> list:
    with project.store() as store:
        return store.list_fires(name, limit=0)


def runs_of(project: Project, name: str) -> list:
    with project.store() as store:
        return [r for r in store.list_runs(limit=0) if r.schedule == name]


def next_hour() -> datetime:
    now = datetime.now(UTC)
    return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def jump_past(clock: Path, when: datetime) -> None:
    """Move the daemon's test clock to 2 s after ``when``."""
    set_clock(clock, (when - datetime.now(UTC)).total_seconds() + 2)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = make_project(tmp_path, shutdown_grace="1s")
    project.pipeline("tick", PIPELINE)
    project.schedules("schedules:\n  - {name: filed, pipeline: tick, cron: '0 0 1 1 *'}\n")
    return project


@pytest.fixture
def clock(tmp_path: Path) -> Path:
    path = tmp_path / "clock"
    set_clock(path, 0)
    return path


# -- served at once, fires on time --------------------------------------------------------------


def test_created_cron_schedule_is_listed_as_api_and_fires_on_time(project, clock, daemons) -> None:
    daemons(project, clock_file=clock).start()
    body = {"name": "hourly", "pipeline": "tick", "cron": "0 * * * *"}
    status, created = call(project, "POST", "/schedules", body)
    assert status == 201, created
    due = next_hour()
    assert created["source"] == "api" and created["kind"] == "cron"
    assert created["next_fire_times"][0] == due.isoformat(timespec="microseconds")
    shown = listed(project)["hourly"]
    assert (shown["source"], shown["next_fire_times"]) == ("api", created["next_fire_times"])
    jump_past(clock, due)
    wait_until(lambda: [f.outcome for f in fires(project, "hourly")] == ["started"], timeout=15)
    (fire,) = fires(project, "hourly")
    assert fire.nominal_time == due
    (run,) = runs_of(project, "hourly")
    assert run.trigger == "schedule:hourly"


def test_created_schedule_survives_a_restart_and_fires_after_it(project, clock, daemons) -> None:
    daemon = daemons(project, clock_file=clock).start()
    recurrence = {"frequency": "Hour", "interval": 1}
    body = {"name": "rec", "pipeline": "tick", "recurrence": recurrence}
    status, created = call(project, "POST", "/schedules", body)
    assert status == 201, created
    daemon.stop()
    daemons(project, clock_file=clock).start()
    status, again = call(project, "GET", "/schedules/rec")
    assert status == 200
    assert (again["source"], again["next_fire_times"]) == ("api", created["next_fire_times"])
    due = datetime.fromisoformat(created["next_fire_times"][0])
    jump_past(clock, due)
    wait_until(lambda: runs_of(project, "rec"), timeout=15)
    assert [f.nominal_time for f in fires(project, "rec")] == [due]


def test_created_on_change_schedule_runs_for_a_dropped_file(project, daemons) -> None:
    inbox = project.datastore / "inbox"
    inbox.mkdir(parents=True)
    daemons(project).start()
    watch = {"path": "inbox", "settle": "0.2s", "data_path_parameter": "input_path"}
    body = {"name": "drops", "pipeline": "tick", "on_change": watch}
    status, created = call(project, "POST", "/schedules", body)
    assert status == 201, created
    assert created["watch"]["path"] == "inbox" and created["next_fire_times"] == []
    staged = project.datastore / "a.csv"
    staged.write_text("x\n")
    os.rename(staged, inbox / "a.csv")  # the watcher runs once the daemon has answered
    (run,) = wait_until(lambda: runs_of(project, "drops"), timeout=15)
    assert run.trigger == "file:inbox/a.csv"
    assert run.parameters["input_path"] == "datastore://default/inbox/a.csv"


def test_deleted_schedule_stops_firing(project, clock, daemons) -> None:
    project.schedules("schedules:\n  - {name: witness, pipeline: tick, cron: '0 * * * *'}\n")
    daemons(project, clock_file=clock).start()
    body = {"name": "gone", "pipeline": "tick", "cron": "0 * * * *"}
    assert call(project, "POST", "/schedules", body)[0] == 201
    assert call(project, "DELETE", "/schedules/gone") == (204, None)
    assert call(project, "GET", "/schedules/gone")[0] == 404
    assert "gone" not in listed(project)
    jump_past(clock, next_hour())
    wait_until(lambda: runs_of(project, "witness"), timeout=15)  # the same fire time came due
    assert fires(project, "gone") == [] and runs_of(project, "gone") == []


# -- refusals, overrides and reloads, on one daemon -----------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory):
    project = make_project(tmp_path_factory.mktemp("live"), shutdown_grace="1s")
    project.pipeline("tick", PIPELINE)
    project.schedules("schedules:\n  - {name: filed, pipeline: tick, cron: '0 0 1 1 *'}\n")
    daemon = DaemonProcess(project).start()
    yield project, daemon
    daemon.stop()
    daemon.close()


def test_a_duplicate_name_is_409_naming_where_the_other_lives(live) -> None:
    project, _ = live
    body = {"name": "filed", "pipeline": "tick", "interval": "1h"}
    status, answer = call(project, "POST", "/schedules", body)
    assert status == 409
    assert "already exists in" in answer["detail"] and "schedules.yaml" in answer["detail"]


def test_an_invalid_definition_is_422_naming_the_field(live) -> None:
    project, _ = live
    body = {"name": "bad", "pipeline": "tick", "cron": "0 * * * *", "parameters": {"nope": 1}}
    status, answer = call(project, "POST", "/schedules", body)
    assert status == 422
    (problem,) = answer["detail"]
    assert problem["loc"] == ["body", "parameters", "nope"]
    assert "unknown parameter 'nope'" in problem["msg"]


def test_deleting_a_file_schedule_is_409_and_an_unknown_one_404(live) -> None:
    project, _ = live
    status, answer = call(project, "DELETE", "/schedules/filed")
    assert status == 409 and "remove it there" in answer["detail"]
    assert call(project, "DELETE", "/schedules/ghost")[0] == 404


def test_disable_of_an_api_schedule_holds_across_a_reload(live) -> None:
    project, daemon = live
    body = {"name": "paused", "pipeline": "tick", "interval": "1h"}
    assert call(project, "POST", "/schedules", body)[0] == 201
    assert call(project, "POST", "/schedules/paused/disable")[0] == 200
    reloads = len(daemon.events("reload_done"))
    daemon.signal(signal.SIGHUP)
    wait_until(lambda: len(daemon.events("reload_done")) > reloads, timeout=10)
    status, shown = call(project, "GET", "/schedules/paused")
    assert status == 200
    assert (shown["enabled"], shown["override"], shown["next_fire_times"]) == (
        False,
        "disabled",
        [],
    )


def test_trigger_and_fires_work_for_an_api_schedule(live) -> None:
    project, _ = live
    body = {"name": "poke", "pipeline": "tick", "cron": "0 0 1 1 *", "concurrency": "allow"}
    assert call(project, "POST", "/schedules", body)[0] == 201
    status, fired = call(project, "POST", "/schedules/poke/trigger")
    assert status == 200 and fired["run_id"], fired
    status, records = call(project, "GET", "/schedules/poke/fires")
    assert status == 200 and [r["run_id"] for r in records] == [fired["run_id"]]
