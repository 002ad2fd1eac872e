"""``Schedule.update`` changes what Azure lets it change — name, description, recurrence,
pipeline parameters, status and the datastore settings of a file-drop schedule — and the
schedule keeps its ``id``, its fire history and the runs it started, even across a rename. A
refused update changes nothing. On an embedded workspace (the store directly) and through a
real daemon, which serves the change at once."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from scheduler.core.errors import DefinitionError, NotFound, PipeschedError
from scheduler.sdk import Schedule, ScheduleRecurrence, Workspace
from tests.conftest import wait_until
from tests.projects import Project
from tests.test_sdk_runtime_embedded import _project

SCORE = """
parameters:
  input_path: {type: path, default: "datastore://default/inbox"}
steps:
  score: {type: command, command: ["cat", "${{parameters.input_path}}"], allow_reuse: false}
"""


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = _project(tmp_path)
    project.pipeline("score", SCORE)
    return project


def weekly() -> ScheduleRecurrence:
    return ScheduleRecurrence(
        frequency="Week", interval=1, week_days=["Monday"], time_of_day="00:00"
    )


def daily_at_six() -> ScheduleRecurrence:
    return ScheduleRecurrence(frequency="Day", interval=1, hours=[6], minutes=[0])


def listed(project: Project, name: str) -> dict:
    (found,) = [
        s for s in json.loads(project.cli("schedules", "--json").stdout) if s["name"] == name
    ]
    return found


def rename_and_reschedule(ws: Workspace, project: Project) -> str:
    """The common part: create, update every field of a time schedule, read it back."""
    schedule = Schedule.create(
        ws, name="weekly", pipeline_id="train", experiment_name="t", recurrence=weekly()
    )
    first_id = schedule.id
    assert first_id != "weekly"
    schedule.update(
        name="daily",
        description="every morning",
        recurrence=daily_at_six(),
        pipeline_parameters={"reg": 0.25},
    )
    assert (schedule.name, schedule.id) == ("daily", first_id)
    again = Schedule.get(ws, first_id)
    assert again.name == "daily" and again.recurrence.hours == [6]
    assert again.recurrence.frequency == "Day"
    with pytest.raises(NotFound):
        Schedule.get(ws, "weekly")
    shown = listed(project, "daily")
    assert shown["id"] == first_id and shown["definition"]["parameters"] == {"reg": 0.25}
    assert shown["definition"]["description"] == "every morning"
    next_fire = datetime.fromisoformat(shown["next_fire_times"][0])
    assert (next_fire.hour, next_fire.minute) == (6, 0)
    assert next_fire - datetime.now(next_fire.tzinfo) <= timedelta(days=1)

    schedule.update(status="Disabled")
    assert Schedule.get(ws, first_id).status == "Disabled"
    schedule.update(status="Active")
    assert listed(project, "daily")["enabled"] is True

    with pytest.raises(PipeschedError, match="unknown parameter 'colour'"):
        schedule.update(pipeline_parameters={"colour": "blue"}, status="Disabled")
    kept = Schedule.get(ws, first_id)
    assert kept.status == "Active" and kept._definition["parameters"] == {"reg": 0.25}
    return first_id


def test_update_changes_every_field_and_keeps_the_id_embedded(project: Project):
    ws = Workspace.from_config(path=str(project.config_path))
    rename_and_reschedule(ws, project)


def test_update_through_a_daemon_keeps_the_history_of_a_renamed_schedule(project: Project, daemons):
    daemon = daemons(project).start()
    (listening,) = wait_until(lambda: daemon.events("api_listening"), timeout=15)
    token = project.cli("token", "create", "update").stdout.strip().splitlines()[-1]
    ws = Workspace(url=listening["url"], token=token)
    schedule = Schedule.create(
        ws, name="nightly", pipeline_id="train", experiment_name="t", recurrence=weekly()
    )
    fired = project.cli("schedule", "trigger", "nightly")
    assert fired.returncode == 0, fired.stderr
    (before,) = schedule.get_pipeline_runs()
    schedule.update(name="nightly-v2", pipeline_parameters={"reg": 0.5})
    assert Schedule.get(ws, schedule.id).name == "nightly-v2"
    # The fire history and the run follow the new name.
    assert [r.id for r in schedule.get_pipeline_runs()] == [before.id]
    fires = project.cli("fires", "nightly-v2", "--json")
    assert fires.returncode == 0, fires.stderr
    assert [f["run_id"] for f in json.loads(fires.stdout)] == [before.id]
    # The daemon serves the change at once: the new name fires with the new parameter.
    fired = project.cli("schedule", "trigger", "nightly-v2")
    assert fired.returncode == 0, fired.stderr
    assert project.cli("schedule", "trigger", "nightly").returncode == 1
    latest = wait_until(
        lambda: [
            r
            for r in json.loads(project.cli("runs", "--json", "--limit", "0").stdout)
            if r["schedule"] == "nightly-v2" and r["id"] != before.id
        ],
        timeout=30,
    )
    shown = json.loads(project.cli("show", latest[0]["id"], "--json").stdout)
    assert shown["parameters"]["reg"] == 0.5

    rename_and_reschedule(ws, project)


def test_a_file_drop_schedule_moves_to_another_folder(project: Project, daemons):
    daemon = daemons(project).start()
    wait_until(lambda: daemon.events("api_listening"), timeout=15)
    ws = Workspace.from_config(path=str(project.config_path))
    schedule = Schedule.create(
        ws,
        name="drops",
        pipeline_id="score",
        experiment_name="scoring",
        datastore=ws.get_default_datastore(),
        path_on_datastore="inbox",
        data_path_parameter_name="input_path",
    )
    schedule.update(path_on_datastore="incoming")
    assert Schedule.get(ws, schedule.id).path_on_datastore == "incoming"
    folder = project.datastore / "incoming"
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / "a.csv.part"
    part.write_text("1,2\n")
    os.replace(part, folder / "a.csv")
    (scored,) = wait_until(
        lambda: [
            r
            for r in json.loads(project.cli("runs", "--json", "--limit", "0").stdout)
            if r["trigger"] == "file:incoming/a.csv" and r["status"] == "completed"
        ],
        timeout=90,
    )
    assert scored["schedule"] == "drops"
    schedule.update(polling_interval=5)
    assert listed(project, "drops")["definition"]["on_change"]["polling_interval"] == 300
    with pytest.raises(DefinitionError, match="file-drop schedule has no recurrence"):
        schedule.update(recurrence=weekly())


def test_a_schedule_of_the_file_is_not_updated_through_the_api(project: Project):
    project.schedules(
        """
        schedules:
          - name: from-file
            pipeline: train
            cron: "0 3 * * *"
        """
    )
    ws = Workspace.from_config(path=str(project.config_path))
    with pytest.raises(PipeschedError, match=r"lives in .*schedules\.yaml; change it there"):
        Schedule.get(ws, "from-file").update(description="no")
