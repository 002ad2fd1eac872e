"""Schedules from code: ScheduleRecurrence → DESIGN's ``recurrence:``, Schedule.create/list/get/
enable/disable/delete on an embedded workspace with no daemon (the store directly), and through
a REAL daemon — over its unix socket from an embedded workspace, and over REST with a token."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from scheduler.core.errors import DefinitionError, DefinitionErrors, NotFound, PipeschedError
from scheduler.sdk import Schedule, ScheduleRecurrence, Workspace
from scheduler.services.daemon_http import DaemonClient, socket_path
from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess
from tests.projects import Project
from tests.test_sdk_runtime_embedded import _project

WEEKLY = {"frequency": "Week", "interval": 1, "week_days": ["Monday"], "time_of_day": "00:00"}


def weekly(zone: str = "UTC") -> ScheduleRecurrence:
    return ScheduleRecurrence(
        frequency="Week", interval=1, week_days=["Monday"], time_of_day="00:00", time_zone=zone
    )


def next_monday_midnight(zone: str) -> datetime:
    now = datetime.now(ZoneInfo(zone))
    day = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    while day.weekday() != 0:
        day += timedelta(days=1)
    return day


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return _project(tmp_path)


@pytest.fixture
def ws(project: Project) -> Workspace:
    return Workspace(config=project.config_path)


# -- the recurrence ---------------------------------------------------------------------------


def test_recurrence_maps_to_designs_recurrence():
    assert weekly("Europe/Berlin")._to_definition() == {**WEEKLY, "time_zone": "Europe/Berlin"}


def test_recurrence_start_time_becomes_iso():
    start = datetime(2026, 1, 5, 6, 30)
    recurrence = ScheduleRecurrence(frequency="Day", interval=2, start_time=start, hours=[6])
    assert recurrence._to_definition()["start_time"] == "2026-01-05T06:30:00"


def test_recurrence_error_names_the_callers_line():
    with pytest.raises(DefinitionError) as caught:
        ScheduleRecurrence(frequency="Weekly", interval=1)  # the line the error must name
    position = caught.value.position
    assert position is not None and Path(position.file) == Path(__file__)
    assert position.line == caught.tb.tb_lineno
    assert "frequency must be one of Minute, Hour, Day, Week, Month" in str(caught.value)


def test_week_days_need_a_weekly_frequency():
    with pytest.raises(DefinitionError, match="week_days can only be given with"):
        ScheduleRecurrence(frequency="Day", interval=1, week_days=["Monday"])


def test_weekly_monday_fires_next_monday_midnight_in_its_zone(ws: Workspace):
    zone = "America/New_York"
    schedule = Schedule.create(
        ws, name="weekly", pipeline_id="train", experiment_name="t", recurrence=weekly(zone)
    )
    first = schedule.next_fire_times[0]
    assert first == next_monday_midnight(zone)
    assert first.utcoffset() == next_monday_midnight(zone).utcoffset()


def test_windows_zone_names_are_accepted(ws: Workspace):
    schedule = Schedule.create(
        ws,
        name="pacific",
        pipeline_id="train",
        experiment_name="t",
        recurrence=weekly("Pacific Standard Time"),
    )
    assert schedule.next_fire_times[0] == next_monday_midnight("America/Los_Angeles")


# -- file drops --------------------------------------------------------------------------------


def test_polling_interval_left_out_means_inotify(ws: Workspace, project: Project):
    Schedule.create(
        ws,
        name="drops",
        pipeline_id="train",
        experiment_name="t",
        datastore=ws.get_default_datastore(),
        path_on_datastore="inbox",
    )
    kept = project.store().get_api_schedule("drops").definition
    assert kept["on_change"] == {"datastore": "default", "path": "inbox", "polling_interval": None}


def test_polling_interval_is_in_minutes(ws: Workspace, project: Project):
    schedule = Schedule.create(
        ws,
        name="polled",
        pipeline_id="train",
        experiment_name="t",
        datastore=ws.get_default_datastore(),
        path_on_datastore="inbox",
        polling_interval=5,
    )
    assert (
        project.store().get_api_schedule("polled").definition["on_change"]["polling_interval"]
        == "5m"
    )
    assert schedule.datastore_name == "default" and schedule.path_on_datastore == "inbox"


def test_create_needs_a_recurrence_or_a_datastore(ws: Workspace):
    with pytest.raises(DefinitionError, match=r"either recurrence= .* or datastore="):
        Schedule.create(ws, name="x", pipeline_id="train", experiment_name="t")


def test_invalid_schedule_names_the_callers_line(ws: Workspace):
    with pytest.raises(DefinitionErrors) as caught:
        Schedule.create(
            ws,
            name="bad",
            pipeline_id="train",
            experiment_name="t",
            recurrence=weekly(),
            pipeline_parameters={"nope": 1},
        )
    (error,) = caught.value.errors
    assert Path(error.position.file) == Path(__file__)
    assert "unknown parameter 'nope'" in error.message


# -- managing them without a daemon -------------------------------------------------------


def test_created_schedule_is_listed_as_api(ws: Workspace, project: Project):
    Schedule.create(
        ws, name="weekly", pipeline_id="train", experiment_name="t", recurrence=weekly()
    )
    (listed,) = Schedule.list(ws)
    assert listed.name == "weekly" and listed.status == "Active" and listed.pipeline_id == "train"
    assert Schedule.get(ws, "weekly").id == listed.id != "weekly"
    assert Schedule.get(ws, listed.id).name == "weekly"


def test_disable_holds_and_enable_restores(ws: Workspace):
    schedule = Schedule.create(
        ws, name="weekly", pipeline_id="train", experiment_name="t", recurrence=weekly()
    )
    schedule.disable()
    assert schedule.status == "Disabled" and Schedule.get(ws, "weekly").status == "Disabled"
    assert Schedule.list(ws) == [] and len(Schedule.list(ws, active_only=False)) == 1
    schedule.enable()
    assert Schedule.get(ws, "weekly").status == "Active"


def test_delete_removes_it(ws: Workspace):
    schedule = Schedule.create(
        ws, name="weekly", pipeline_id="train", experiment_name="t", recurrence=weekly()
    )
    schedule.delete()
    assert Schedule.list(ws, active_only=False) == []
    with pytest.raises(NotFound):
        Schedule.get(ws, "weekly")


def test_a_file_schedule_cannot_be_deleted(ws: Workspace, project: Project):
    project.schedules(
        """
        schedules:
          - {name: nightly, pipeline: train, cron: "0 1 * * *"}
        """
    )
    with pytest.raises(PipeschedError, match="remove it there"):
        Schedule.get(ws, "nightly").delete()


def test_endpoint_schedule_runs_the_pipeline_name(ws: Workspace):
    schedule = Schedule.create_for_pipeline_endpoint(
        ws, name="ep", pipeline_endpoint_id="train", experiment_name="t", recurrence=weekly()
    )
    assert schedule.pipeline_id == "train" and schedule.pipeline_endpoint_id == "train"


# -- through a daemon ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, DaemonProcess, str]]:
    project = _project(tmp_path_factory.mktemp("sdk-schedule"))
    daemon = DaemonProcess(project).start()
    try:
        (listening,) = wait_until(lambda: daemon.events("api_listening"), timeout=15)
        yield project, daemon, listening["url"]
    finally:
        daemon.close()


def test_embedded_schedule_reaches_a_running_daemon_at_once(live):
    project, _, _ = live
    ws = Workspace(config=project.config_path)
    Schedule.create(
        ws, name="sock-weekly", pipeline_id="train", experiment_name="t", recurrence=weekly()
    )
    # The daemon fires only schedules it serves: a trigger proves it has this one.
    fired = DaemonClient(socket_path(project.state_dir)).post(
        "/api/v1/schedules/sock-weekly/trigger"
    )
    assert fired["run_id"] is not None
    Schedule.get(ws, "sock-weekly").delete()
    with pytest.raises(NotFound):
        DaemonClient(socket_path(project.state_dir)).post("/api/v1/schedules/sock-weekly/trigger")


def test_remote_workspace_manages_schedules(live):
    project, _, url = live
    created = project.cli("token", "create", "schedules")
    ws = Workspace(url=url, token=created.stdout.strip().splitlines()[-1])
    schedule = Schedule.create(
        ws, name="rest-weekly", pipeline_id="train", experiment_name="t", recurrence=weekly()
    )
    assert schedule.next_fire_times[0] == next_monday_midnight("UTC")
    schedule.disable()
    assert Schedule.get(ws, "rest-weekly").status == "Disabled"
    schedule.enable()
    assert [s.name for s in Schedule.list(ws) if s.name == "rest-weekly"] == ["rest-weekly"]
    schedule.delete()
    with pytest.raises(NotFound):
        Schedule.get(ws, "rest-weekly")


def test_remote_invalid_schedule_names_the_callers_line(live):
    project, _, url = live
    created = project.cli("token", "create", "schedules-bad")
    ws = Workspace(url=url, token=created.stdout.strip().splitlines()[-1])
    with pytest.raises(DefinitionError) as caught:
        Schedule.create(
            ws, name="rest-bad", pipeline_id="nope", experiment_name="t", recurrence=weekly()
        )
    assert Path(caught.value.position.file) == Path(__file__)
    assert "nope" in str(caught.value)
