"""schedules.yaml: every kind of schedule validated, mistakes at their nodes."""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from scheduler.core.errors import DefinitionErrors
from scheduler.definitions import load_schedules
from scheduler.definitions.timing import parse_seconds_field, split_cron
from tests.projects import shipped

try:
    from fixtures_definitions import make_config
except ImportError:  # tests/ became a package
    from tests.fixtures_definitions import make_config

PIPELINES = {"diabetes-training", "batch-scoring"}


@pytest.fixture
def load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    config = make_config(tmp_path)

    def load(text: str):
        config.schedules_file.write_text(textwrap.dedent(text))
        return load_schedules(config.schedules_file, config, PIPELINES)

    return load


@pytest.fixture
def errors_of(load):
    def errors(text: str) -> list[str]:
        with pytest.raises(DefinitionErrors) as info:
            load(text)
        return [str(e) for e in info.value.errors]

    return errors


FILE = "config/schedules.yaml"


def test_cron_schedule_with_defaults(load) -> None:
    (schedule,) = load("""\
    schedules:
      - name: weekly
        pipeline: diabetes-training
        cron: "0 0 * * MON"
    """)
    assert schedule.kind == "cron"
    assert (schedule.timezone, schedule.catchup, schedule.catchup_limit) == ("UTC", "latest", 5)
    assert (schedule.concurrency, schedule.jitter, schedule.enabled) == ("forbid", 0.0, True)
    assert schedule.parameters == {} and schedule.experiment is None


def test_every_kind_loads(load) -> None:
    schedules = load("""\
    schedules:
      - {name: a, pipeline: diabetes-training, cron: "*/10 0 0 * * *"}
      - {name: b, pipeline: diabetes-training, interval: 15m, start: "2026-01-05T00:00:00"}
      - name: c
        pipeline: diabetes-training
        recurrence: {frequency: Week, interval: 1, week_days: [Monday], time_of_day: "00:00"}
      - name: d
        pipeline: batch-scoring@2
        on_change: {path: inbox/, patterns: ["*.csv"], mode: batch, data_path_parameter: input_path}
    """)
    assert [s.kind for s in schedules] == ["cron", "interval", "recurrence", "on_change"]
    assert schedules[1].interval == 900.0
    assert schedules[1].start == datetime(2026, 1, 5, tzinfo=schedules[1].zone)
    watch = schedules[3].on_change
    assert watch is not None and watch.settle == 1.0 and watch.max_wait == 30.0
    assert watch.ignore_patterns == ["*.part", "*.tmp", ".*"]
    assert schedules[3].pipeline_name == "batch-scoring"
    assert schedules[3].pipeline_version == "2"


def test_windows_time_zone_is_mapped(load) -> None:
    (schedule,) = load("""\
    schedules:
      - name: r
        pipeline: diabetes-training
        recurrence: {frequency: Day, hours: [6], minutes: [30], time_zone: W. Europe Standard Time}
    """)
    assert schedule.timezone == "Europe/Berlin"
    assert schedule.zone.utcoffset(datetime(2026, 7, 1)) == timedelta(hours=2)


def test_needs_exactly_one_kind(errors_of) -> None:
    assert errors_of("""\
    schedules:
      - name: two
        pipeline: diabetes-training
        cron: "0 0 * * *"
        interval: 5m
    """) == [
        f"{FILE}:5:5: error: schedule 'two' needs exactly one of cron, interval, recurrence or "
        "on_change (has cron, interval)"
    ]


def test_unknown_pipeline_name_of_a_version_suggests(errors_of) -> None:
    assert errors_of("""\
    schedules:
      - {name: s, pipeline: diabetes-trainig@3, interval: 1h}
    """) == [
        f"{FILE}:2:25: error: unknown pipeline 'diabetes-trainig' in schedule 's' "
        "(did you mean 'diabetes-training'?)"
    ]


def test_unknown_pipeline_is_reported_at_its_value(errors_of) -> None:
    (error,) = errors_of("""\
    schedules:
      - {name: s, pipeline: nothere, interval: 1h}
    """)
    assert error.startswith(f"{FILE}:2:25: error: unknown pipeline 'nothere' in schedule 's'")


def test_duplicate_names(errors_of) -> None:
    assert errors_of("""\
    schedules:
      - {name: s, pipeline: diabetes-training, interval: 1h}
      - {name: s, pipeline: diabetes-training, interval: 2h}
    """) == [
        f"{FILE}:3:12: error: duplicate schedule name 's' (first at line 2) "
        "(schedule names are unique)"
    ]


@pytest.mark.parametrize("cron", ["61 * * * *", "0 0 * *", "70 0 0 * * *", "* * 31 2 *"])
def test_bad_cron_expressions(errors_of, cron: str) -> None:
    (error,) = errors_of(f"""\
    schedules:
      - {{name: s, pipeline: diabetes-training, cron: "{cron}"}}
    """)
    assert error.startswith(f"{FILE}:2:50: error: 'cron' in schedule 's': ")


def test_recurrence_rules_of_azure(errors_of) -> None:
    assert errors_of("""\
    schedules:
      - name: r
        pipeline: diabetes-training
        recurrence:
          frequency: Hour
          week_days: [Monday]
          time_of_day: "7:00"
    """) == [
        f"{FILE}:6:18: error: week_days of schedule 'r' need frequency Week (has Hour)",
        f"{FILE}:7:20: error: time_of_day of schedule 'r' need frequency Day or Week (has Hour)",
    ]


def test_unknown_time_zone(errors_of) -> None:
    assert errors_of("""\
    schedules:
      - {name: s, pipeline: diabetes-training, interval: 1h, timezone: Mars/Olympus}
    """) == [
        f"{FILE}:2:68: error: 'timezone' in schedule 's': unknown time zone 'Mars/Olympus' "
        "(use an IANA name such as UTC or Europe/Berlin)"
    ]


def test_on_change_path_must_stay_in_the_datastore(errors_of) -> None:
    (error,) = errors_of("""\
    schedules:
      - name: s
        pipeline: batch-scoring
        on_change: {datastore: default, path: ../outside}
    """)
    assert error.startswith(f"{FILE}:4:43: error: 'on_change.path' in schedule 's': path must be")


def test_on_change_unknown_datastore(errors_of) -> None:
    assert errors_of("""\
    schedules:
      - name: s
        pipeline: batch-scoring
        on_change: {datastore: lake}
    """) == [f"{FILE}:4:28: error: unknown datastore 'lake' (configured: default)"]


def test_unknown_key_in_a_schedule(errors_of) -> None:
    assert errors_of("""\
    schedules:
      - {name: s, pipeline: diabetes-training, interval: 1h, catchup_limt: 2}
    """) == [
        f"{FILE}:2:58: error: unknown key 'catchup_limt' in schedule 's' "
        "(did you mean 'catchup_limit'?)"
    ]


def test_seconds_field_and_aliases() -> None:
    assert split_cron("*/20 0 0 * * *") == ("*/20", "0 0 * * *")
    assert split_cron("@daily") == (None, "0 0 * * *")
    assert parse_seconds_field("*/20") == [0, 20, 40]
    assert parse_seconds_field("5,10-12") == [5, 10, 11, 12]
    with pytest.raises(ValueError):
        parse_seconds_field("60")


def test_shipped_schedules_file_loads() -> None:
    schedules = load_schedules(shipped("config", "schedules.yaml"), None, {"diabetes-training"})
    assert {s.name: s.kind for s in schedules} == {
        "weekly-diabetes-training": "cron",
        "nightly-by-recurrence": "recurrence",
    }


def test_shipped_commented_examples_validate_when_uncommented(tmp_path: Path) -> None:
    text = shipped("config", "schedules.yaml").read_text()
    lines = text.splitlines()
    start = lines.index("# More kinds:") + 1
    body = "schedules:\n" + "\n".join(line[1:] for line in lines[start:] if line.startswith("#"))
    file = tmp_path / "schedules.yaml"
    file.write_text(body + "\n")
    schedules = load_schedules(file, None, {"diabetes-training"})
    assert {s.kind for s in schedules} == {"interval", "on_change"}
