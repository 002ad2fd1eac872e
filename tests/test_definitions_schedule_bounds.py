"""Bounded schedule values, one compute path: ``pipesched validate`` refuses, with file, line and
field, every schedule the daemon could not compute fire times for (the same trigger code), and
the absurd ones; names must be strings; ``on_change.path`` stays out of ``.pipesched/`` and has
no NUL. Each repro of the issue goes through the real CLI, with a good schedule next to it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scheduler.definitions import build_schedule
from scheduler.definitions.schedules import MAX_INTERVAL
from scheduler.triggers.time import fire_time_check, fire_time_problems
from tests.projects import Project, make_project

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = make_project(tmp_path)
    project.pipeline("tick", "steps:\n  s: {type: command, command: ['true']}\n")
    return project


def validate(project: Project, bad: str) -> tuple[int, list[dict]]:
    """``pipesched validate --json`` over a file of one good schedule and ``bad`` (one YAML
    flow mapping, on line 3): the exit code and the errors."""
    project.schedules(f"schedules:\n  - {{name: good, pipeline: tick, interval: 1s}}\n  - {bad}\n")
    result = project.cli("validate", "--json")
    return result.returncode, json.loads(result.stdout)["errors"]


@pytest.mark.parametrize(
    ("bad", "field", "message"),
    [
        ("{name: tiny, pipeline: tick, interval: 1e-9}", "interval", "between 0.1 s and 100 years"),
        (
            "{name: huge, pipeline: tick, interval: 9223372036854775808}",
            "interval",
            "between 0.1 s and 100 years",
        ),
        (
            "{name: ages, pipeline: tick, recurrence: {frequency: Month, interval: 1000000000}}",
            "interval",
            "more than 100 years",
        ),
        ("{name: fast, pipeline: tick, interval: 0.05}", "interval", "between 0.1 s"),
        ("{name: inf, pipeline: tick, interval: .inf}", "interval", "between 0.1 s"),
        (
            "{name: late, pipeline: tick, cron: '0 0 1 1 *', start: '9999-12-31T23:00:00'}",
            "cron",
            "would next fire after year 9999",
        ),
        (
            "{name: drop, pipeline: tick, on_change: {path: 'a/.pipesched/b'}}",
            "path",
            ".pipesched/",
        ),
        ("{name: drop, pipeline: tick, on_change: {path: .pipesched}}", "path", ".pipesched/"),
        ('{name: drop, pipeline: tick, on_change: {path: "in\\0box"}}', "path", "NUL"),
    ],
)
def test_validate_refuses_with_file_line_and_field(project, bad, field, message) -> None:
    code, errors = validate(project, bad)
    assert code == 1
    (error,) = errors
    assert error["file"].endswith("schedules.yaml") and error["line"] == 3
    assert message in error["message"]
    before = bad[: error["column"] - 1 - len("  - ")]  # the error points at the field's value
    assert before.rstrip().endswith(f"{field}:") or before.rstrip().endswith(f"{field}: {{")


@pytest.mark.parametrize("name", ["[a, b]", "{a: 1}"])
def test_a_name_that_is_not_a_string_is_an_error_not_a_traceback(project, name) -> None:
    code, errors = validate(project, f"{{name: {name}, pipeline: tick, interval: 5s}}")
    assert code == 1
    assert any("'name'" in e["text"] and "must be a string" in e["text"] for e in errors)
    assert all(e["line"] == 3 for e in errors)


def test_the_limits_themselves_are_accepted(project) -> None:
    project.schedules(
        "schedules:\n"
        "  - {name: fastest, pipeline: tick, interval: 0.1}\n"
        f"  - {{name: slowest, pipeline: tick, interval: {MAX_INTERVAL}}}\n"
        "  - {name: century, pipeline: tick, recurrence: {frequency: Month, interval: 1200}}\n"
        "  - {name: ended, pipeline: tick, cron: '* * * * *', end: '2001-01-01T00:00:00'}\n"
    )
    result = project.cli("validate")
    assert result.returncode == 0, result.stderr
    assert "4 schedules" in result.stdout


def test_the_daemon_trigger_code_is_what_validation_runs() -> None:
    """A value past the bounds check still goes through ``time_trigger``: a Month recurrence
    whose next fire is past year 9999 has no fire time, and is refused."""
    schedule = build_schedule(
        {
            "name": "m",
            "pipeline": "p",
            "recurrence": {"frequency": "Month", "interval": 1200},
            "start": "9990-06-01T00:00:00",
        },
        None,
        None,
    )
    assert schedule is not None
    assert fire_time_problems(schedule, datetime(9991, 1, 1, tzinfo=UTC)) == [
        (("recurrence",), "recurrence of schedule 'm' would next fire after year 9999")
    ]
    assert fire_time_problems(schedule, NOW) == []  # 9990-06-01 itself is a fire time


def test_rest_style_definitions_are_refused_by_field() -> None:
    """``build_schedule`` without an error list raises, each error at its field."""
    bad = {"name": "m", "pipeline": "p", "recurrence": {"frequency": "Month", "interval": 10**9}}
    with pytest.raises(Exception, match="more than 100 years"):
        build_schedule(bad, None, None, check=fire_time_check(NOW))
