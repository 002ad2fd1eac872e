"""The time a run stands for: the previous fire time of every kind of trigger (exact across DST),
the interval a fire's run covers, and what steps see of it in templates and variables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from scheduler.core.runtimes import RunTimes, request_times
from scheduler.definitions import build_schedule
from scheduler.definitions.templating import RUN_FIELDS, partially_substitute, substitute
from scheduler.triggers import cron_trigger, time_trigger
from scheduler.triggers.time import needs_registration, schedule_run_times
from tests.test_fires import NOW, Fires, with_fires

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def schedule(**fields: Any):
    return build_schedule({"name": "s", "pipeline": "p", **fields}, None, None)


def wall(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%d %H:%M %Z")


def berlin(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=BERLIN, fold=fold)  # type: ignore[misc]


# -- previous fire time of a cron, across DST ----------------------------------------------------


def test_daily_2am_in_berlin_across_spring_forward() -> None:
    """02:00 does not exist on 2026-03-29: that day fires at 03:00 CEST, and each run's interval
    runs from the fire before it."""
    trigger = cron_trigger("0 2 * * *", "Europe/Berlin")
    assert wall(trigger.previous_before(berlin(2026, 3, 29, 3, 0))) == "2026-03-28 02:00 CET"
    assert wall(trigger.previous_before(berlin(2026, 3, 30, 2, 0))) == "2026-03-29 03:00 CEST"
    assert trigger.previous_before(berlin(2026, 3, 30, 2, 0)).utcoffset() == timedelta(hours=2)


def test_daily_2_30_in_berlin_across_fall_back() -> None:
    """02:30 happens twice on 2026-10-25: the fire is the first pass's, and it is the previous
    fire time of both the second pass and the next day."""
    trigger = cron_trigger("30 2 * * *", "Europe/Berlin")
    first_pass = berlin(2026, 10, 25, 2, 30, fold=0)
    second_pass = berlin(2026, 10, 25, 2, 30, fold=1)
    assert trigger.previous_before(berlin(2026, 10, 26, 2, 30)) == first_pass
    assert wall(trigger.previous_before(berlin(2026, 10, 26, 2, 30))) == "2026-10-25 02:30 CEST"
    assert trigger.previous_before(second_pass) == first_pass
    assert wall(trigger.previous_before(first_pass)) == "2026-10-24 02:30 CEST"


@pytest.mark.parametrize(
    ("expression", "zone", "day"),
    [
        ("0 2 * * *", "Europe/Berlin", datetime(2026, 3, 29, tzinfo=UTC)),
        ("30 2 * * *", "Europe/Berlin", datetime(2026, 3, 29, tzinfo=UTC)),
        ("30 2 * * *", "Europe/Berlin", datetime(2026, 10, 25, tzinfo=UTC)),
        ("0 3 * * *", "Europe/Berlin", datetime(2026, 10, 25, tzinfo=UTC)),
        ("*/15 * * * *", "Europe/Berlin", datetime(2026, 10, 25, tzinfo=UTC)),
        ("0 */4 * * *", "Europe/Berlin", datetime(2026, 3, 29, tzinfo=UTC)),
        ("30 1 * * *", "America/New_York", datetime(2026, 11, 1, tzinfo=UTC)),
        ("0 0 * * 0", "America/New_York", datetime(2026, 3, 8, tzinfo=UTC)),
    ],
)
def test_previous_fire_time_is_the_fire_the_timer_made_before(
    expression: str, zone: str, day: datetime
) -> None:
    """Walking forward as the timer does over the days around a DST change, the previous fire
    time of each fire, and of every moment up to it, is the fire just before."""
    trigger = cron_trigger(expression, zone)
    fires = [trigger.next_after(day - timedelta(days=8 if expression.endswith("0") else 1))]
    while fires[-1] < day + timedelta(days=2):
        fires.append(trigger.next_after(fires[-1]))
    for before, fire in pairwise(fires):
        assert trigger.previous_before(fire) == before, wall(fire)
        start, end = before.astimezone(UTC), fire.astimezone(UTC)  # real time, not wall time
        middle = start + (end - start) / 2
        assert trigger.previous_before(middle) == before, wall(middle)
        assert trigger.previous_before(start + timedelta(microseconds=1)) == before


def test_previous_fire_time_of_a_cron_with_seconds() -> None:
    trigger = cron_trigger("0,30 0 12 * * *", "UTC")
    noon = datetime(2026, 5, 1, 12, 0, 30, tzinfo=UTC)
    assert trigger.previous_before(noon) == datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert trigger.previous_before(noon - timedelta(seconds=30)) == datetime(
        2026, 4, 30, 12, 0, 30, tzinfo=UTC
    )


def test_first_fire_of_a_bounded_cron_still_covers_the_day_before() -> None:
    """``start`` bounds when a schedule fires, not what its first run stands for."""
    daily = schedule(cron="0 2 * * *", timezone="Europe/Berlin", start="2026-06-10T00:00:00")
    times = schedule_run_times(daily, berlin(2026, 6, 10, 2, 0))
    assert (wall(times.local(times.interval_start)), wall(times.local(times.interval_end))) == (
        "2026-06-09 02:00 CEST",
        "2026-06-10 02:00 CEST",
    )


# -- intervals and recurrences --------------------------------------------------------------------


def test_an_interval_schedule_covers_the_interval_before_each_fire() -> None:
    every_six_hours = schedule(interval="6h", start="2026-03-28T20:00:00+00:00")
    first = datetime(2026, 3, 28, 20, 0, tzinfo=UTC)
    times = schedule_run_times(every_six_hours, first)
    assert times.interval_start == first - timedelta(hours=6)
    assert times.interval_end == times.nominal_time == first


def test_a_minute_recurrence_is_an_interval() -> None:
    every_ten = schedule(
        recurrence={"frequency": "Minute", "interval": 10}, start="2026-03-02T00:00:00+00:00"
    )
    fire = datetime(2026, 3, 2, 0, 40, tzinfo=UTC)
    times = schedule_run_times(every_ten, fire)
    assert (times.interval_start, times.interval_end) == (fire - timedelta(minutes=10), fire)


def test_a_weekly_recurrence_covers_the_week_in_wall_clock_time() -> None:
    """Every Monday and Thursday at 06:00 Berlin, across the spring change: Monday's run covers
    Thursday 06:00 CET to Monday 06:00 CEST, 95 real hours."""
    twice_a_week = schedule(
        recurrence={
            "frequency": "Week",
            "week_days": ["Monday", "Thursday"],
            "time_of_day": "06:00",
            "time_zone": "Europe/Berlin",
            "start_time": "2026-03-01T00:00:00",
        }
    )
    monday = berlin(2026, 3, 30, 6, 0)
    times = schedule_run_times(twice_a_week, monday)
    assert wall(times.local(times.interval_start)) == "2026-03-26 06:00 CET"
    assert times.interval_end - times.interval_start == timedelta(hours=95)


def test_the_first_fire_of_a_recurrence_has_no_earlier_time_and_no_interval() -> None:
    daily = schedule(
        recurrence={"frequency": "Day", "interval": 1, "start_time": "2026-03-01T09:00:00+00:00"}
    )
    trigger = time_trigger(daily)
    first = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    assert trigger.next_after(first - timedelta(seconds=1)) == first
    assert trigger.previous_before(first) is None
    times = schedule_run_times(daily, first)
    assert times.nominal_time == first and times.interval_start is times.interval_end is None
    second = schedule_run_times(daily, first + timedelta(days=1))
    assert second.interval_start == first


def test_a_recurrence_counted_from_its_registration_uses_that_registration() -> None:
    """Every two days at the registration's time of day: the interval is two days long."""
    every_two_days = schedule(recurrence={"frequency": "Day", "interval": 2})
    registered = datetime(2026, 3, 1, 7, 15, tzinfo=UTC)
    fire = datetime(2026, 3, 5, 7, 15, tzinfo=UTC)
    times = schedule_run_times(every_two_days, fire, registered)
    assert times.interval_start == fire - timedelta(days=2)


def test_only_a_calendar_recurrence_without_a_start_needs_its_registration() -> None:
    """The fire handler reads the registration from the store only when the interval
    depends on it."""
    assert not needs_registration(schedule(cron="0 2 * * *"))
    assert not needs_registration(schedule(interval="6h"))
    assert not needs_registration(schedule(recurrence={"frequency": "Hour", "interval": 2}))
    assert needs_registration(schedule(recurrence={"frequency": "Day", "interval": 2}))
    assert not needs_registration(
        schedule(recurrence={"frequency": "Day", "start_time": "2026-03-01T09:00:00+00:00"})
    )


# -- what steps see ----------------------------------------------------------------------------------


def test_template_values_are_in_the_schedule_zone_and_the_date_is_its_date() -> None:
    """23:30 UTC on 2026-03-28 is already the 29th in Berlin."""
    times = RunTimes(
        nominal_time=datetime(2026, 3, 28, 23, 30, tzinfo=UTC),
        interval_start=datetime(2026, 3, 27, 23, 30, tzinfo=UTC),
        interval_end=datetime(2026, 3, 28, 23, 30, tzinfo=UTC),
        zone="Europe/Berlin",
    )
    assert times.template_values() == {
        "nominal_time": "2026-03-29T00:30:00+01:00",
        "nominal_date": "2026-03-29",
        "interval_start": "2026-03-28T00:30:00+01:00",
        "interval_end": "2026-03-29T00:30:00+01:00",
    }
    assert times.environment() == {
        "PIPESCHED_NOMINAL_TIME": "2026-03-29T00:30:00+01:00",
        "PIPESCHED_INTERVAL_START": "2026-03-28T00:30:00+01:00",
        "PIPESCHED_INTERVAL_END": "2026-03-29T00:30:00+01:00",
    }


def test_a_run_no_schedule_started_is_shown_in_utc_with_an_empty_interval() -> None:
    times = request_times(datetime(2026, 7, 1, 14, 0, 5, tzinfo=BERLIN))
    assert times.template_values() == {
        "nominal_time": "2026-07-01T12:00:05+00:00",
        "nominal_date": "2026-07-01",
        "interval_start": "",
        "interval_end": "",
    }
    assert times.environment()["PIPESCHED_INTERVAL_START"] == ""


def test_an_interval_has_both_ends_or_none() -> None:
    with pytest.raises(ValueError, match="both ends"):
        RunTimes(nominal_time=datetime(2026, 1, 1, tzinfo=UTC), interval_start=datetime.now(UTC))


def test_templates_substitute_the_time_names_and_fingerprints_keep_only_the_run_id() -> None:
    assert {"nominal_time", "nominal_date", "interval_start", "interval_end"} <= set(RUN_FIELDS)
    times = RunTimes(nominal_time=datetime(2026, 5, 2, 2, 0, tzinfo=UTC), zone="UTC")
    run = {"id": "r1", "experiment": "e", **times.template_values()}
    text = "--day ${{run.nominal_date}} --at ${{ run.nominal_time }} --id ${{run.id}}"
    assert substitute(text, {"run": run}) == (
        "--day 2026-05-02 --at 2026-05-02T02:00:00+00:00 --id r1"
    )
    assert partially_substitute(text, {"run": times.template_values()}) == (
        "--day 2026-05-02 --at 2026-05-02T02:00:00+00:00 --id ${{run.id}}"
    )


# -- the fire handler sets them ---------------------------------------------------------------------


def test_a_fired_run_records_its_nominal_time_and_interval(tmp_path: Path) -> None:
    """Through the real fire handler and dispatcher (in-memory store): each of an hourly
    schedule's late fires, replayed under ``catchup: all``, stands for its own hour."""
    late = [NOW - timedelta(hours=h) for h in (3, 2, 1)]

    async def body(f: Fires) -> None:
        await f.handler.handle_due("s", late)
        runs = [f.store.get_run_detail(fire.run_id).run for fire in f.fires() if fire.run_id]
        stood_for = [(r.stands_for.interval_start, r.stands_for.nominal_time) for r in runs]
        assert stood_for == [(t - timedelta(hours=1), t) for t in late]
        assert all(r.stands_for.zone == "UTC" for r in runs)
        f.release_all()

    with_fires(tmp_path, body, catchup="all", concurrency="allow")
