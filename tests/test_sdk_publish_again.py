"""A notebook run again: publishing a label that exists gets the published pipeline back when
its content is the same, and is refused naming the next free label when it is not; creating a
schedule that exists gets it back when it is the same, and is refused with the way out
(``Schedule.update``, or a new name) when it is not. Embedded and through a real daemon."""

from __future__ import annotations

import json

import pytest

from scheduler.core.errors import PipeschedError
from scheduler.sdk import Pipeline, Schedule, ScheduleRecurrence, Workspace
from tests.conftest import wait_until
from tests.projects import Project
from tests.test_sdk_runtime_embedded import _project


@pytest.fixture
def project(tmp_path) -> Project:
    return _project(tmp_path)


def weekly(day: str = "Monday") -> ScheduleRecurrence:
    return ScheduleRecurrence(frequency="Week", interval=1, week_days=[day], time_of_day="00:00")


def run_the_notebook_twice(ws: Workspace, project: Project) -> None:
    def notebook() -> tuple[str, str]:
        pipeline = Pipeline.load_yaml(ws, project.root / "pipelines" / "train")
        published = pipeline.publish(name="training", description="first", version="1")
        schedule = Schedule.create(
            ws,
            name="weekly",
            pipeline_id=published.id,
            experiment_name="training",
            recurrence=weekly(),
        )
        return published.id, schedule.id

    first = notebook()
    assert notebook() == first
    pipelines = json.loads(project.cli("pipelines", "--json").stdout)
    assert [v["id"] for p in pipelines for v in p["versions"]] == ["training@1"]
    schedules = json.loads(project.cli("schedules", "--json").stdout)
    assert [s["name"] for s in schedules if s["source"] == "api"] == ["weekly"]


def change_is_refused(ws: Workspace, project: Project) -> None:
    script = project.root / "pipelines" / "train" / "train.py"
    script.write_text(script.read_text() + "\nprint('changed')\n")
    pipeline = Pipeline.load_yaml(ws, project.root / "pipelines" / "train")
    with pytest.raises(PipeschedError) as caught:
        pipeline.publish(name="training", version="1")
    assert "already has a published version '1' with different content" in str(caught.value)
    assert "the next free label is '2'" in str(caught.value)
    assert pipeline.publish(name="training", version="2").id == "training@2"

    with pytest.raises(PipeschedError) as caught:
        Schedule.create(
            ws,
            name="weekly",
            pipeline_id="training@1",
            experiment_name="training",
            recurrence=weekly("Friday"),
        )
    message = str(caught.value)
    assert "a schedule named 'weekly' already exists with a different recurrence" in message
    assert "Schedule.update" in message and "new name" in message
    assert Schedule.get(ws, "weekly").recurrence.week_days == ["Monday"]


def test_a_notebook_runs_again_embedded(project: Project):
    ws = Workspace.from_config(path=str(project.config_path))
    run_the_notebook_twice(ws, project)
    change_is_refused(ws, project)


def test_a_notebook_runs_again_through_the_daemon(project: Project, daemons):
    daemon = daemons(project).start()
    (listening,) = wait_until(lambda: daemon.events("api_listening"), timeout=15)
    token = project.cli("token", "create", "again").stdout.strip().splitlines()[-1]
    ws = Workspace(url=listening["url"], token=token)
    run_the_notebook_twice(ws, project)
    change_is_refused(ws, project)


def test_a_label_that_ends_in_a_number_is_counted_up(project: Project):
    ws = Workspace.from_config(path=str(project.config_path))
    pipeline = Pipeline.load_yaml(ws, project.root / "pipelines" / "train")
    pipeline.publish(name="training", version="v3")
    script = project.root / "pipelines" / "train" / "train.py"
    script.write_text(script.read_text() + "\nprint('changed')\n")
    with pytest.raises(PipeschedError, match="the next free label is 'v4'"):
        Pipeline.load_yaml(ws, project.root / "pipelines" / "train").publish(
            name="training", version="v3"
        )
