"""Bounded schedule values, one compute path: ``pipesched validate`` refuses, with file, line and
field, every schedule the daemon could not compute fire times for (the same trigger code), and
the absurd ones; names must be strings; ``on_change.path`` stays out of ``.pipesched/`` and has
no NUL. Each repro of the issue goes through the real CLI, with a good schedule next to it."""

from __future__ import annotations

import copy
import json
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from scheduler.daemon.schedule_set import load_schedule_set
from scheduler.definitions import build_schedule
from scheduler.definitions.schedules import MAX_INTERVAL
from scheduler.services.schedule_summary import collect
from scheduler.services.schedules import validate_definitions
from scheduler.store import Store
from scheduler.triggers.time import fire_time_check, fire_time_problems, time_trigger
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


# -- fuzz: what validate accepts, the daemon computes -----------------------------------------

NASTY: list[object] = [
    1e-9,
    0,
    -1,
    0.1,
    0.05,
    1,
    59,
    3155760000,
    3155760001,
    9223372036854775808,
    10**30,
    1e308,
    float("inf"),
    float("nan"),
    "1e9d",
    "100y",
    "36525d",
    "0.1s",
    "2h",
    "",
    [],
    {},
    None,
    True,
    "x",
    [1, 2],
    {"a": 1},
    "9999-12-31T23:59:59",
    "0001-01-01T00:00:00",
    "9999-01-01",
    "2026-03-29T02:30:00",
    "24:00",
    "23:59",
    "Mars/Olympus_Mons",
    "Europe/Berlin",
    "W. Europe Standard Time",
    "Month",
    "Day",
    "Week",
    "Minute",
    "Hour",
    "Year",
    1000000000,
    1200,
    1201,
    36525,
    52596000,
    ["Monday", "Sunday"],
    ["Funday"],
    [0, 23],
    [24],
    [0, 59],
    "0 0 1 1 *",
    "* * * * * *",
    "61 * * * *",
    "@yearly",
    "*/0 * * * *",
    "0 0 30 2 *",
    ".pipesched/x",
    "a\x00b",
    "../out",
    "inbox/",
]
COMMON = [("start",), ("end",), ("timezone",), ("jitter",), ("name",), ("catchup_limit",)]
OWN = {
    "interval": [("interval",)],
    "cron": [("cron",)],
    "recurrence": [
        ("recurrence", "frequency"),
        ("recurrence", "interval"),
        ("recurrence", "week_days"),
        ("recurrence", "hours"),
        ("recurrence", "minutes"),
        ("recurrence", "time_of_day"),
        ("recurrence", "start_time"),
    ],
    "on_change": [("on_change", "path"), ("on_change", "settle"), ("on_change", "max_wait")],
}
BASES: list[dict] = [
    {"name": "i", "pipeline": "tick", "interval": 5},
    {"name": "c", "pipeline": "tick", "cron": "0 0 * * *"},
    {"name": "r", "pipeline": "tick", "recurrence": {"frequency": "Day", "interval": 1}},
    {"name": "m", "pipeline": "tick", "recurrence": {"frequency": "Month", "interval": 1}},
    {"name": "w", "pipeline": "tick", "recurrence": {"frequency": "Week", "week_days": ["Monday"]}},
    {"name": "f", "pipeline": "tick", "on_change": {"path": "inbox/"}},
]


def mutated(rng) -> list[dict]:
    """The bases with one to three fields set to nasty values."""
    schedules = copy.deepcopy(BASES)
    for _ in range(rng.randint(1, 2)):
        entry = rng.choice(schedules)
        kind = next(k for k in OWN if k in entry)
        path = rng.choice(OWN[kind] * 3 + COMMON)
        target = entry
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = rng.choice(NASTY)
    return schedules


def test_fuzz_what_validate_accepts_the_daemon_can_serve(project) -> None:
    """300 mutated files: validate never raises, and when it accepts a file the daemon's own
    load serves every schedule of it, each with fire times computed by the trigger code the
    timer uses, and ``schedules`` summarizes every one without an error."""

    rng = random.Random(14)
    config = project.config()
    accepted = refused = 0
    with Store.open(config.database_url) as store:
        for _ in range(300):
            text = yaml.safe_dump({"schedules": mutated(rng)}, allow_unicode=False)
            (project.root / "config" / "schedules.yaml").write_text(text)
            errors = validate_definitions(config, (), NOW)
            assert all(e.file is not None and e.position is not None for e in errors), text
            summaries = collect(config, store, NOW)  # never raises: bad ones are listed
            if errors:
                refused += 1
                assert any(s.error for s in summaries) or len(summaries) < len(BASES), text
                continue
            accepted += 1
            served = load_schedule_set(project.config_path, strict=True)
            assert len(served.schedules) == len(BASES), text
            for schedule in served.time_schedules().values():
                trigger = time_trigger(schedule, NOW)
                trigger.next_times(NOW, 3)
            assert not any(s.error for s in summaries), text
    assert accepted >= 20 and refused >= 100, (accepted, refused)
