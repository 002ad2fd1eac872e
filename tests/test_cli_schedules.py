"""``pipesched schedules`` and ``pipesched next`` against real definition files and a real SQLite
store, with the wall clock frozen (time-machine) so fire times are exact."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from click.testing import CliRunner

from scheduler.cli import main
from scheduler.cli.cmd_next import preview
from scheduler.core.clock import Clock
from scheduler.core.errors import PipeschedError
from scheduler.store import Store

try:
    from projects import Project, make_project
except ImportError:  # tests/ became a package
    from tests.projects import Project, make_project

NOW = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)  # a Tuesday
SCHEDULE_KEYS = {
    "id",  # stable across updates and renames
    "name",
    "pipeline",
    "kind",
    "source",
    "enabled",
    "override",
    "timezone",
    "description",
    "next_fire_times",
    "last_run",
}
SCHEDULES = """\
schedules:
  - name: weekly
    pipeline: train
    cron: "0 0 * * MON"
    timezone: Europe/Berlin
  - name: every-15m
    pipeline: train
    interval: 15m
  - name: biweekly
    pipeline: train
    recurrence: {frequency: Week, interval: 2, week_days: [Monday, Wednesday],
                 time_of_day: "09:00", time_zone: America/New_York}
  - name: paused
    pipeline: train
    cron: "*/5 * * * *"
    enabled: false
  - name: drops
    pipeline: train
    on_change: {path: inbox/, patterns: ["*.csv"]}
"""


class FixedClock(Clock):
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> datetime:
        return self.moment


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = make_project(tmp_path)
    project.pipeline("train", "steps:\n  a: {type: python_script, script: a.py}\n", {"a.py": ""})
    (project.root / "config" / "schedules.yaml").write_text(SCHEDULES)
    return project


def open_store(project: Project, at: datetime = NOW) -> Store:
    return Store.open(project.config().database_url, clock=FixedClock(at))


def pipesched(project: Project, *args: str, at: datetime = NOW) -> Result:
    """The real entry point, in-process, with the wall clock frozen at ``at``."""
    runner = CliRunner()
    with time_machine.travel(at, tick=False), runner.isolation() as (out, err, _):
        try:
            main([*args, "-c", str(project.config_path)])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        return Result(code, out.getvalue().decode(), err.getvalue().decode())


def listed(project: Project) -> dict[str, dict]:
    result = pipesched(project, "schedules", "--json")
    assert result.exit_code == 0, result.stderr
    return {entry["name"]: entry for entry in json.loads(result.stdout)}


# -- schedules --json ---------------------------------------------------------------------------


def test_json_has_design_shape_for_every_schedule(project: Project) -> None:
    entries = listed(project)
    assert set(entries) == {"weekly", "every-15m", "biweekly", "paused", "drops"}
    for name, entry in entries.items():
        extra = {"watch"} if name == "drops" else set()
        assert set(entry) == SCHEDULE_KEYS | extra | {"definition"}  # fields may be added
    assert {e["kind"] for e in entries.values()} == {"cron", "interval", "recurrence", "on_change"}


def test_json_definition_is_the_entry_without_its_defaults(project: Project) -> None:
    assert listed(project)["weekly"]["definition"] == {
        "name": "weekly",
        "pipeline": "train",
        "cron": "0 0 * * MON",
        "timezone": "Europe/Berlin",
    }


def test_json_next_fire_times_carry_the_schedule_offset(project: Project) -> None:
    weekly = listed(project)["weekly"]
    assert weekly["next_fire_times"] == [
        "2026-03-09T00:00:00.000000+01:00",
        "2026-03-16T00:00:00.000000+01:00",
        "2026-03-23T00:00:00.000000+01:00",
        "2026-03-30T00:00:00.000000+02:00",  # after Berlin's spring forward
        "2026-04-06T00:00:00.000000+02:00",
    ]
    assert weekly["timezone"] == "Europe/Berlin"
    assert weekly["description"] == "At 00:00, only on Monday"


def test_interval_counts_from_first_registration(project: Project) -> None:
    with open_store(project, NOW - timedelta(minutes=10)) as store:
        store.register_schedules({"every-15m": "file"})
    assert listed(project)["every-15m"]["next_fire_times"][:2] == [
        "2026-03-03T12:05:00.000000+00:00",
        "2026-03-03T12:20:00.000000+00:00",
    ]


def test_never_registered_interval_counts_from_now(project: Project) -> None:
    assert listed(project)["every-15m"]["next_fire_times"][0] == "2026-03-03T12:15:00.000000+00:00"


def test_recurrence_counts_weeks_from_registration(project: Project) -> None:
    with open_store(project, datetime(2026, 2, 23, 12, tzinfo=UTC)) as store:  # Monday, week 0
        store.register_schedules({"biweekly": "file"})
    # Week 0 is Feb 23's; this week (Mar 2) is week 1, so the next fires are in week 2.
    assert listed(project)["biweekly"]["next_fire_times"][:2] == [
        "2026-03-09T09:00:00.000000-04:00",  # New York is on summer time from Mar 8
        "2026-03-11T09:00:00.000000-04:00",
    ]


def test_disabled_schedule_is_listed_without_next_fire_times(project: Project) -> None:
    paused = listed(project)["paused"]
    assert (paused["enabled"], paused["override"], paused["next_fire_times"]) == (False, None, [])


def test_disable_override_beats_the_definition(project: Project) -> None:
    with open_store(project) as store:
        store.set_override("weekly", False)
        store.set_override("paused", True)
    entries = listed(project)
    assert (entries["weekly"]["enabled"], entries["weekly"]["override"]) == (False, "disabled")
    assert entries["weekly"]["next_fire_times"] == []
    assert (entries["paused"]["enabled"], entries["paused"]["override"]) == (True, "enabled")
    assert len(entries["paused"]["next_fire_times"]) == 5


def test_on_change_schedule_shows_its_watch(project: Project) -> None:
    drops = listed(project)["drops"]
    assert drops["next_fire_times"] == []
    assert drops["watch"] == {
        "datastore": "default",
        "path": "inbox/",
        "pending": 0,
        "unhandled": 0,
        "last_file": None,
    }


def test_last_run_shows_its_status_and_nominal_fire_time(project: Project) -> None:
    fired = datetime(2026, 3, 2, 23, 0, tzinfo=UTC)  # Monday 00:00 in Berlin
    with open_store(project) as store:
        store.register_schedules({"weekly": "file"})
        store.claim_fire("weekly", fired)
        run = store.create_run(
            pipeline="train",
            content_hash="c0ffee",
            experiment="train",
            parameters={},
            trigger="schedule:weekly",
            steps=[("a", "a", "python_script")],
            schedule="weekly",
            fire=("weekly", fired),
        )
        store.start_run(run.id)
        store.finish_run(run.id, "completed")
    assert listed(project)["weekly"]["last_run"] == {
        "id": run.id,
        "status": "completed",
        "fired_at": "2026-03-02T23:00:00.000000+00:00",
    }


# -- schedules (table) --------------------------------------------------------------------------


def test_table_is_sorted_by_next_fire_with_the_never_firing_last(project: Project) -> None:
    result = pipesched(project, "schedules", "--no-headers")
    assert result.exit_code == 0, result.stderr
    names = {"weekly", "every-15m", "biweekly", "paused", "drops"}
    order = [next(t for t in line.split() if t in names) for line in result.stdout.splitlines()]
    # every-15m: 12:15 today; biweekly (week 0 = this week): Wed 09:00 EST; weekly: Monday.
    assert order == ["every-15m", "biweekly", "weekly", "drops", "paused"]
    assert "NEXT" not in result.stdout


def row_of(output: str, name: str) -> str:
    return next(line for line in output.splitlines() if line.split()[0] == name)


def test_table_shows_the_name_first_the_expression_with_its_zone_and_relative_times(
    project: Project,
) -> None:
    result = pipesched(project, "schedules")
    assert result.stdout.splitlines()[0].split() == [
        "SCHEDULE",
        "PIPELINE",
        "WHEN",
        "NEXT",
        "LAST",
        "RESULT",
    ]
    weekly = row_of(result.stdout, "weekly")
    assert weekly.split()[:2] == ["weekly", "train"]
    assert weekly.split()[-5:] == ["(Europe/Berlin)", "in", "5d11h", "-", "-"]
    assert "0 0 * * MON (Europe/Berlin)  in 5d11h " in weekly
    every = row_of(result.stdout, "every-15m").split()
    assert every[2:6] == ["every", "15m", "in", "15m"]  # UTC: no zone


def test_wide_table_adds_absolute_times_in_the_schedules_zone_and_the_meaning(
    project: Project,
) -> None:
    result = pipesched(project, "schedules", "-o", "wide")
    assert result.stdout.splitlines()[0].split()[-1] == "DESCRIPTION"
    weekly = row_of(result.stdout, "weekly")
    assert "Mon 2026-03-09 00:00:00 CET (in 5d11h)" in weekly
    assert weekly.endswith("At 00:00, only on Monday")


def test_table_marks_disabled_schedules(project: Project) -> None:
    with open_store(project) as store:
        store.set_override("weekly", False)
    output = pipesched(project, "schedules").stdout
    assert "disabled (override)" in row_of(output, "weekly")
    assert " disabled " in row_of(output, "paused")


def test_table_shows_last_fire_and_its_outcome(project: Project) -> None:
    fired = NOW - timedelta(hours=19)
    with open_store(project) as store:
        store.register_schedules({"paused": "file"})
        store.claim_fire("paused", fired, outcome="skipped", reason="overlap")
    assert "  19h ago  skipped" in row_of(pipesched(project, "schedules").stdout, "paused")
    wide = row_of(pipesched(project, "schedules", "-o", "wide").stdout, "paused")
    assert "Mon 2026-03-02 17:00:00 UTC (19h ago)  skipped" in wide


def test_bad_schedules_file_is_reported_with_file_and_line(project: Project) -> None:
    (project.root / "config" / "schedules.yaml").write_text(
        textwrap.dedent("""\
        schedules:
          - name: broken
            pipeline: train
            cron: "61 * * * *"
        """)
    )
    result = pipesched(project, "schedules")  # listed as an error, the others still shown
    assert result.exit_code == 0 and "broken" in result.stdout and "error" in result.stdout
    assert "schedules.yaml:4:11: error: " in result.stderr
    assert "bad cron expression '61 * * * *'" in result.stderr


# -- next ---------------------------------------------------------------------------------------


def test_preview_reads_zero_as_sunday_in_the_given_zone() -> None:
    result = preview("0 0 * * 0", "Europe/Berlin", 2, NOW)
    assert [t.isoformat() for t in result["next_fire_times"]] == [
        "2026-03-08T00:00:00+01:00",
        "2026-03-15T00:00:00+01:00",
    ]
    assert result["description"] == "At 00:00, only on Sunday"


def test_preview_refuses_unknown_zone_with_a_hint() -> None:
    with pytest.raises(PipeschedError, match="unknown time zone 'Mars/Base'"):
        preview("* * * * *", "Mars/Base", 1, NOW)


def test_next_prints_description_and_times_with_time_left(project: Project) -> None:
    result = pipesched(project, "next", "30 2 * * *", "--tz", "Europe/Berlin", "-n", "3")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "30 2 * * * (Europe/Berlin): At 02:30"
    assert lines[1].split() == ["NEXT", "LEFT"]
    assert lines[2] == "Wed 2026-03-04 02:30:00 CET  13h"
    assert len(lines) == 5


def test_next_json(project: Project) -> None:
    result = pipesched(project, "next", "*/20", "30", "2", "*", "*", "*", "-n", "2", "--json")
    assert json.loads(result.stdout) == {
        "expression": "*/20 30 2 * * *",
        "timezone": "UTC",
        "description": "Every 20 seconds, at 30 minutes past the hour, between 02:00 and 02:59",
        "next_fire_times": ["2026-03-04T02:30:00.000000+00:00", "2026-03-04T02:30:20.000000+00:00"],
    }


def test_next_bad_expression_is_one_line_and_exit_1(project: Project) -> None:
    result = pipesched(project, "next", "61 * * * *")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "bad minute" in result.stderr


def test_next_through_the_installed_command(project: Project) -> None:
    result = project.cli("next", "@weekly", "-n", "1", "--json")
    assert result.returncode == 0, result.stderr
    (moment,) = json.loads(result.stdout)["next_fire_times"]
    assert datetime.fromisoformat(moment).strftime("%a %H:%M") == "Sun 00:00"
