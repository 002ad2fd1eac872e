"""Schedules created through the API or SDK (``source: api``), without a daemon: the store's
side on SQLite and PostgreSQL, and ``scheduler.services.api_schedules`` — the checks the REST handlers
and the embedded SDK share — on a real project with a real SQLite store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.core.clock import Clock
from scheduler.core.errors import NotFound
from scheduler.services.api_schedules import (
    FileScheduleRefused,
    InvalidSchedule,
    api_schedule_defs,
    create_api_schedule,
    delete_api_schedule,
)
from scheduler.store import Store
from scheduler.store.errors import ScheduleExists
from tests.projects import Project, make_project

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
WEEKLY = {"name": "weekly", "pipeline": "train", "cron": "0 0 * * MON"}


class MovableClock(Clock):
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


# -- the store, on both backends ------------------------------------------------------------------


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(T0)


@pytest.fixture
def timed_store(database_url: str, clock: MovableClock):
    with Store.open(database_url, clock=clock) as store:
        yield store


def test_store_keeps_the_definition_of_an_api_schedule(timed_store: Store) -> None:
    timed_store.add_api_schedule("weekly", WEEKLY)
    (state,) = timed_store.api_schedules()
    assert (state.name, state.source, state.definition) == ("weekly", "api", WEEKLY)
    assert state.registered_at == T0
    assert timed_store.get_api_schedule("weekly") == state


def test_store_refuses_a_second_api_schedule_of_one_name(timed_store: Store) -> None:
    timed_store.add_api_schedule("weekly", WEEKLY)
    with pytest.raises(ScheduleExists, match="'weekly' already exists"):
        timed_store.add_api_schedule("weekly", {**WEEKLY, "cron": "0 1 * * *"})
    assert timed_store.get_api_schedule("weekly").definition == WEEKLY


def test_store_delete_keeps_the_fire_history(timed_store: Store) -> None:
    timed_store.add_api_schedule("weekly", WEEKLY)
    timed_store.claim_fire("weekly", T0 + timedelta(days=7), outcome="skipped", reason="x")
    timed_store.delete_api_schedule("weekly")
    assert timed_store.api_schedules() == []
    assert "weekly" not in timed_store.schedule_states()
    assert [f.outcome for f in timed_store.list_fires("weekly")] == ["skipped"]


def test_store_recreated_name_is_a_new_first_registration(
    timed_store: Store, clock: MovableClock
) -> None:
    timed_store.add_api_schedule("weekly", WEEKLY)
    timed_store.set_override("weekly", False)
    timed_store.claim_fire("weekly", T0, outcome="skipped", reason="x")
    timed_store.delete_api_schedule("weekly")
    clock.at = T0 + timedelta(days=3)
    state = timed_store.add_api_schedule("weekly", WEEKLY)
    assert state.registered_at == T0 + timedelta(days=3)
    assert (state.override, state.last_fire_time, state.last_outcome) == (None, None, None)


def test_store_takes_over_the_row_of_a_schedule_gone_from_the_file(timed_store: Store) -> None:
    timed_store.register_schedules({"weekly": "file"})
    state = timed_store.add_api_schedule("weekly", WEEKLY)
    assert (state.source, state.definition) == ("api", WEEKLY)


def test_store_delete_of_an_unknown_api_schedule_is_not_found(timed_store: Store) -> None:
    timed_store.register_schedules({"weekly": "file"})
    with pytest.raises(NotFound):
        timed_store.delete_api_schedule("weekly")  # a file schedule's row is not the API's


# -- checks shared by the REST API and the embedded SDK -------------------------------------------

PIPELINE = """
parameters:
  input_path: {type: path, default: inbox}
  reg: {type: float, default: 0.1}
steps:
  s: {type: command, command: ["true"]}
"""


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = make_project(tmp_path)
    project.pipeline("train", PIPELINE)
    project.schedules("schedules:\n  - {name: nightly, pipeline: train, cron: '0 2 * * *'}\n")
    return project


@pytest.fixture
def store(project: Project):
    with project.store() as store:
        yield store


def create(project: Project, store: Store, **definition):
    return create_api_schedule(project.config(), store, {**WEEKLY, **definition})


def problems(project: Project, store: Store, **definition) -> dict[tuple, str]:
    with pytest.raises(InvalidSchedule) as raised:
        create(project, store, **definition)
    assert store.api_schedules() == []  # nothing kept
    return {error.loc: str(error) for error in raised.value.errors}


def test_create_keeps_the_entry_and_returns_the_validated_schedule(project, store) -> None:
    schedule = create(project, store, timezone="Europe/Berlin", parameters={"reg": 0.5})
    assert (schedule.name, schedule.kind, schedule.timezone) == ("weekly", "cron", "Europe/Berlin")
    assert store.get_api_schedule("weekly").definition["parameters"] == {"reg": 0.5}
    assert [s.name for s in api_schedule_defs(project.config(), store)] == ["weekly"]


def test_create_accepts_datetimes_from_python_callers(project, store) -> None:
    start = datetime(2027, 1, 4, 8, 30)
    create(project, store, start=start)
    assert store.get_api_schedule("weekly").definition["start"] == "2027-01-04T08:30:00"


def test_a_bad_cron_names_its_field(project, store) -> None:
    found = problems(project, store, cron="61 * * * *")
    assert list(found) == [("cron",)]
    assert "'cron' in schedule 'weekly'" in found[("cron",)]


def test_an_unknown_key_is_named_with_a_suggestion(project, store) -> None:
    found = problems(project, store, timezon="UTC")
    assert "did you mean 'timezone'?" in found[("timezon",)]


def test_a_missing_field_is_named(project, store) -> None:
    with pytest.raises(InvalidSchedule) as raised:
        create_api_schedule(project.config(), store, {"name": "x", "cron": "0 * * * *"})
    (error,) = raised.value.errors
    assert error.loc == ("pipeline",)


def test_an_unknown_pipeline_is_refused_with_a_suggestion(project, store) -> None:
    found = problems(project, store, pipeline="trian")
    assert "did you mean 'train'?" in found[("pipeline",)]


def test_parameters_must_fit_the_pipeline(project, store) -> None:
    found = problems(project, store, parameters={"reg": "high", "nope": 1})
    assert "must be a number" in found[("parameters", "reg")]
    assert "unknown parameter 'nope'" in found[("parameters", "nope")]


def test_data_path_parameter_must_be_a_path_parameter(project, store) -> None:
    watch = {"path": "inbox", "data_path_parameter": "reg"}
    found = problems(project, store, cron=None, on_change=watch)
    assert "no path parameter 'reg'" in found[("on_change", "data_path_parameter")]


def test_a_published_version_can_be_scheduled(project, store) -> None:
    from scheduler.services.publish import publish

    publish(project.config(), store, "train", version="1")
    assert create(project, store, pipeline="train@1").pipeline_version == "1"


def test_an_unpublished_version_is_refused(project, store) -> None:
    found = problems(project, store, pipeline="train@7")
    assert "no published version '7'" in found[("pipeline",)]


def test_a_name_in_schedules_yaml_is_taken(project, store) -> None:
    with pytest.raises(ScheduleExists, match=r"'nightly' already exists in .*schedules\.yaml"):
        create(project, store, name="nightly")


def test_a_name_in_the_store_is_taken(project, store) -> None:
    create(project, store)
    with pytest.raises(ScheduleExists, match="created through the API"):
        create(project, store, cron="0 1 * * *")


def test_deleting_a_file_schedule_is_refused_with_the_reason(project, store) -> None:
    with pytest.raises(FileScheduleRefused, match=r"lives in .*schedules\.yaml; remove it there"):
        delete_api_schedule(project.config(), store, "nightly")


def test_deleting_an_unknown_schedule_is_not_found(project, store) -> None:
    with pytest.raises(NotFound):
        delete_api_schedule(project.config(), store, "ghost")


def test_a_deleted_name_can_be_created_again(project, store) -> None:
    create(project, store)
    delete_api_schedule(project.config(), store, "weekly")
    assert create(project, store, cron="0 3 * * *").cron == "0 3 * * *"


def test_a_schedule_whose_pipeline_went_away_is_left_out(project, store) -> None:
    create(project, store)
    (project.root / "pipelines" / "train" / "pipeline.yaml").unlink()
    assert api_schedule_defs(project.config(), store) == []


def test_the_file_wins_over_an_api_schedule_of_its_name(project, store) -> None:
    create(project, store)
    project.schedules("schedules:\n  - {name: weekly, pipeline: train, cron: '0 2 * * *'}\n")
    assert api_schedule_defs(project.config(), store) == []


def test_deleting_a_shadowed_api_schedule_keeps_the_file_schedules_state(project, store) -> None:
    create(project, store)
    store.set_override("weekly", False)
    project.schedules("schedules:\n  - {name: weekly, pipeline: train, cron: '0 2 * * *'}\n")
    delete_api_schedule(project.config(), store, "weekly")
    state = store.schedule_states()["weekly"]
    assert (state.source, state.definition, state.override) == ("file", None, False)


# -- the CLI: pipesched schedules and validate ----------------------------------------------------


def test_schedules_json_lists_api_schedules_with_their_source(project, store) -> None:
    create(project, store, cron="0 0 * * *")
    result = project.cli("schedules", "--json")
    assert result.returncode == 0, result.stderr
    by_name = {s["name"]: s for s in json.loads(result.stdout)}
    assert (by_name["nightly"]["source"], by_name["weekly"]["source"]) == ("file", "api")
    assert len(by_name["weekly"]["next_fire_times"]) == 5
    assert all(t.endswith("T00:00:00.000000+00:00") for t in by_name["weekly"]["next_fire_times"])


def test_schedules_warns_about_an_api_schedule_left_out(project, store) -> None:
    create(project, store)
    project.schedules("schedules: []\n")
    (project.root / "pipelines" / "train" / "pipeline.yaml").unlink()
    result = project.cli("schedules", "--json")
    assert result.returncode == 0, result.stderr
    assert "API schedule 'weekly'" in result.stderr
    (entry,) = json.loads(result.stdout)  # listed, as not served, with the reason
    assert (entry["name"], entry["source"], entry["status"]) == ("weekly", "api", "error")
    assert "API schedule 'weekly'" in entry["error"] and entry["next_fire_times"] == []


def test_validate_reports_a_file_entry_that_shadows_an_api_schedule(project, store) -> None:
    create(project, store)
    project.schedules("schedules:\n  - {name: weekly, pipeline: train, cron: '0 2 * * *'}\n")
    result = project.cli("validate")
    assert result.returncode == 1
    assert "schedules.yaml:2:" in result.stderr
    assert "wins and the API one is left out" in result.stderr
