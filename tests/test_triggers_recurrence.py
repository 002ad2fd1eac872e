"""Interval and Azure-recurrence triggers: anchors (start, start_time, first registration),
intervals above 1, wall-clock time across DST, and counts that cost nothing."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from scheduler.definitions import build_schedule
from scheduler.triggers import COUNT_CAP, time_trigger

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY = datetime(2026, 3, 2, tzinfo=UTC)


def schedule(**fields: Any):
    return build_schedule({"name": "s", "pipeline": "p", **fields}, None, None)


def recurrence(registered_at: datetime | None = None, timezone: str | None = None, **rec: Any):
    extra = {"timezone": timezone} if timezone else {}
    return time_trigger(schedule(recurrence=rec, **extra), registered_at)


def first(trigger, n: int, after: datetime = MONDAY - timedelta(days=400)) -> list[str]:
    fires = []
    for moment in trigger.iter_after(after):
        fires.append(moment.strftime("%Y-%m-%d %a %H:%M:%S %Z"))
        if len(fires) == n:
            break
    return fires


# -- intervals ----------------------------------------------------------------------------------


def test_interval_with_start_fires_at_start_then_every_interval() -> None:
    trigger = time_trigger(schedule(interval="15m", start="2026-03-02T00:07:00+00:00"))
    assert first(trigger, 3) == [
        "2026-03-02 Mon 00:07:00 UTC",
        "2026-03-02 Mon 00:22:00 UTC",
        "2026-03-02 Mon 00:37:00 UTC",
    ]


def test_interval_counts_from_registration_and_does_not_fire_on_it() -> None:
    registered = MONDAY + timedelta(hours=10, microseconds=500_000)
    trigger = time_trigger(schedule(interval="1h30m"), registered)
    assert trigger.next_after(registered) == MONDAY + timedelta(hours=11, minutes=30)
    assert trigger.next_after(MONDAY + timedelta(hours=12)) == MONDAY + timedelta(hours=13)


def test_interval_without_start_needs_registration_time() -> None:
    with pytest.raises(ValueError, match="registration"):
        time_trigger(schedule(interval="15m"))


def test_interval_is_real_time_across_spring_forward() -> None:
    trigger = time_trigger(schedule(interval="1h", timezone="Europe/Berlin"), MONDAY)
    fires = trigger.times_between(
        datetime(2026, 3, 29, 0, 30, tzinfo=BERLIN), datetime(2026, 3, 29, 4, 30, tzinfo=BERLIN)
    ).times
    assert [f.strftime("%H:%M %Z") for f in fires] == ["01:00 CET", "03:00 CEST", "04:00 CEST"]


def test_interval_count_is_arithmetic_for_a_one_second_interval() -> None:
    trigger = time_trigger(schedule(interval=1), MONDAY)
    started = time.perf_counter()
    day = trigger.times_between(MONDAY, MONDAY + timedelta(days=1), 2)
    decade = trigger.times_between(MONDAY, MONDAY + timedelta(days=3650), 2)
    assert time.perf_counter() - started < 0.1
    assert day.count == 86400 and not day.more
    assert decade.count == COUNT_CAP + 1 and decade.more
    assert day.times == [MONDAY + timedelta(seconds=1), MONDAY + timedelta(seconds=2)]


def test_interval_end_is_inclusive() -> None:
    trigger = time_trigger(
        schedule(interval="1h", start="2026-03-02T00:00:00Z", end="2026-03-02T03:00:00Z")
    )
    fires = trigger.times_between(MONDAY - timedelta(hours=1), MONDAY + timedelta(days=1))
    assert fires.count == 4 and fires.times[-1] == MONDAY + timedelta(hours=3)
    assert trigger.next_after(MONDAY + timedelta(hours=3)) is None


def test_on_change_schedule_has_no_time_trigger() -> None:
    with pytest.raises(ValueError, match="on_change"):
        time_trigger(schedule(on_change={"path": "inbox/"}), MONDAY)


# -- recurrences --------------------------------------------------------------------------------


def test_every_two_weeks_on_monday_and_wednesday_from_start_time() -> None:
    trigger = recurrence(
        frequency="Week",
        interval=2,
        week_days=["Monday", "Wednesday"],
        time_of_day="09:00",
        start_time="2026-03-04T10:00:00",  # a Wednesday, after its 09:00
        time_zone="Europe/Berlin",
    )
    assert first(trigger, 5) == [
        "2026-03-16 Mon 09:00:00 CET",
        "2026-03-18 Wed 09:00:00 CET",
        "2026-03-30 Mon 09:00:00 CEST",  # DST began on the 29th: still 09:00 on the wall
        "2026-04-01 Wed 09:00:00 CEST",
        "2026-04-13 Mon 09:00:00 CEST",
    ]


def test_every_two_weeks_counts_weeks_from_registration() -> None:
    registered = datetime(2026, 3, 3, 12, tzinfo=UTC)  # Tuesday of week 0
    trigger = recurrence(
        registered,
        frequency="Week",
        interval=2,
        week_days=["Monday", "Wednesday"],
        time_of_day="09:00",
    )
    assert first(trigger, 3) == [
        "2026-03-04 Wed 09:00:00 UTC",
        "2026-03-16 Mon 09:00:00 UTC",
        "2026-03-18 Wed 09:00:00 UTC",
    ]


def test_start_time_matching_the_pattern_is_not_a_fire() -> None:
    # Azure: "If start_time matches week_days and time_of_day ... the first workload does not
    # run at start_time, but instead runs at the next calculated run time."
    trigger = recurrence(
        frequency="Week", week_days=["Monday"], time_of_day="09:00", start_time="2026-03-02T09:00"
    )
    assert first(trigger, 1) == ["2026-03-09 Mon 09:00:00 UTC"]


def test_every_three_months_from_the_31st_uses_the_last_day_of_shorter_months() -> None:
    trigger = recurrence(frequency="Month", interval=3, start_time="2026-01-31T08:00:00")
    assert first(trigger, 5) == [
        "2026-01-31 Sat 08:00:00 UTC",  # no pattern: the start time itself fires
        "2026-04-30 Thu 08:00:00 UTC",
        "2026-07-31 Fri 08:00:00 UTC",
        "2026-10-31 Sat 08:00:00 UTC",
        "2027-01-31 Sun 08:00:00 UTC",
    ]


def test_monthly_from_the_31st_fires_on_february_28_and_29() -> None:
    trigger = recurrence(frequency="Month", start_time="2027-12-31T00:00:00")
    fires = first(trigger, 15)
    assert "2028-02-29 Tue 00:00:00 UTC" in fires and "2029-02-28 Wed 00:00:00 UTC" in fires


def test_every_two_days_at_hours_and_minutes() -> None:
    trigger = recurrence(
        frequency="Day", interval=2, hours=[16, 8], minutes=[30], start_time="2026-03-02T00:00"
    )
    assert first(trigger, 4) == [
        "2026-03-02 Mon 08:30:00 UTC",
        "2026-03-02 Mon 16:30:00 UTC",
        "2026-03-04 Wed 08:30:00 UTC",
        "2026-03-04 Wed 16:30:00 UTC",
    ]


def test_missing_minutes_come_from_the_registration() -> None:
    registered = datetime(2026, 3, 2, 10, 25, 40, tzinfo=UTC)
    trigger = recurrence(registered, frequency="Day", hours=[8])
    assert first(trigger, 2) == ["2026-03-03 Tue 08:25:00 UTC", "2026-03-04 Wed 08:25:00 UTC"]


def test_daily_recurrence_keeps_wall_clock_time_across_dst() -> None:
    trigger = recurrence(
        frequency="Day", start_time="2026-03-27T09:15:00", time_zone="Europe/Berlin"
    )
    assert first(trigger, 4) == [
        "2026-03-27 Fri 09:15:00 CET",
        "2026-03-28 Sat 09:15:00 CET",
        "2026-03-29 Sun 09:15:00 CEST",
        "2026-03-30 Mon 09:15:00 CEST",
    ]


def test_recurrence_time_in_dst_gap_fires_at_first_valid_time() -> None:
    trigger = recurrence(
        frequency="Day",
        time_of_day="02:30",
        start_time="2026-03-28T00:00",
        time_zone="Europe/Berlin",
    )
    assert first(trigger, 3) == [
        "2026-03-28 Sat 02:30:00 CET",
        "2026-03-29 Sun 03:00:00 CEST",
        "2026-03-30 Mon 02:30:00 CEST",
    ]


def test_recurrence_time_in_dst_overlap_fires_once_in_first_pass() -> None:
    trigger = recurrence(
        frequency="Day",
        time_of_day="02:30",
        start_time="2026-10-24T00:00",
        time_zone="Europe/Berlin",
    )
    assert first(trigger, 3) == [
        "2026-10-24 Sat 02:30:00 CEST",
        "2026-10-25 Sun 02:30:00 CEST",
        "2026-10-26 Mon 02:30:00 CET",
    ]


def test_hourly_recurrence_is_real_time() -> None:
    trigger = recurrence(
        frequency="Hour", interval=1, start_time="2026-03-29T00:00", time_zone="Europe/Berlin"
    )
    assert first(trigger, 4) == [
        "2026-03-29 Sun 00:00:00 CET",
        "2026-03-29 Sun 01:00:00 CET",
        "2026-03-29 Sun 03:00:00 CEST",
        "2026-03-29 Sun 04:00:00 CEST",
    ]


def test_minute_recurrence_without_start_time_does_not_fire_on_creation() -> None:
    registered = MONDAY + timedelta(minutes=3)
    trigger = recurrence(registered, frequency="Minute", interval=15)
    assert trigger.next_after(registered - timedelta(days=1)) == registered + timedelta(minutes=15)


def test_windows_time_zone_name_is_accepted() -> None:
    trigger = recurrence(
        frequency="Day",
        time_of_day="09:00",
        start_time="2026-03-02T00:00",
        time_zone="W. Europe Standard Time",
    )
    assert first(trigger, 1) == ["2026-03-02 Mon 09:00:00 CET"]


def test_large_day_interval_finds_next_date_arithmetically() -> None:
    trigger = recurrence(frequency="Day", interval=1000, start_time="2026-03-02T06:00")
    started = time.perf_counter()
    nxt = trigger.next_after(datetime(2040, 1, 1, tzinfo=UTC))
    assert time.perf_counter() - started < 0.05
    assert (nxt.date() - datetime(2026, 3, 2).date()).days % 1000 == 0
    assert nxt.year == 2042
