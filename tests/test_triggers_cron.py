"""Cron triggers mean what crontab(5) says; APScheduler 3's from_crontab does not (pinned here)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger as APSCronTrigger

from scheduler.definitions import build_schedule
from scheduler.triggers import COUNT_CAP, cron_trigger, time_trigger

MONDAY = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday


def weekdays(expr: str, days: int = 14) -> set[str]:
    fires = cron_trigger(expr).times_between(MONDAY, MONDAY + timedelta(days=days), 100).times
    return {f.strftime("%a") for f in fires}


@pytest.mark.parametrize("expr", ["0 0 * * 0", "0 0 * * 7", "0 0 * * SUN"])
def test_zero_and_seven_are_sunday(expr: str) -> None:
    assert weekdays(expr) == {"Sun"}


def test_apscheduler_from_crontab_reads_zero_as_monday() -> None:
    # Why we never hand users' expressions to APScheduler 3 as they are.
    aps = APSCronTrigger.from_crontab("0 0 * * 0", timezone=UTC)
    assert aps.get_next_fire_time(None, MONDAY + timedelta(hours=1)).strftime("%a") == "Mon"
    assert cron_trigger("0 0 * * 0").next_after(MONDAY + timedelta(hours=1)).strftime("%a") == "Sun"


def test_day_of_month_or_day_of_week_when_both_restricted() -> None:
    # crontab(5): "0 0 13 * 5" fires on every 13th and on every Friday.
    fires = cron_trigger("0 0 13 * 5").times_between(MONDAY, MONDAY + timedelta(days=45), 100)
    days = [f.strftime("%m-%d %a") for f in fires.times]
    assert days == [
        "03-06 Fri",
        "03-13 Fri",  # a Friday the 13th fires once
        "03-20 Fri",
        "03-27 Fri",
        "04-03 Fri",
        "04-10 Fri",
        "04-13 Mon",  # the 13th, though a Monday
    ]


def test_apscheduler_from_crontab_ands_day_fields() -> None:
    aps = APSCronTrigger.from_crontab("0 0 13 * fri", timezone=UTC)
    assert aps.get_next_fire_time(None, MONDAY).strftime("%m-%d %a") == "03-13 Fri"  # ANDed
    assert cron_trigger("0 0 13 * fri").next_after(MONDAY).strftime("%m-%d %a") == "03-06 Fri"


def test_star_in_day_field_keeps_and() -> None:
    # With day-of-month "*", only the weekday restricts (Debian: a leading * means AND).
    assert weekdays("0 0 * * 1") == {"Mon"}


def test_six_fields_fire_at_listed_seconds_of_each_minute() -> None:
    fires = cron_trigger("15,45 */30 9 * * *").times_between(MONDAY, MONDAY + timedelta(days=1))
    assert [f.strftime("%H:%M:%S") for f in fires.times] == [
        "09:00:15",
        "09:00:45",
        "09:30:15",
        "09:30:45",
    ]


def test_six_field_next_after_inside_a_firing_minute() -> None:
    trigger = cron_trigger("*/10 * * * * *")
    after = MONDAY + timedelta(minutes=5, seconds=31)
    assert trigger.next_after(after) == MONDAY + timedelta(minutes=5, seconds=40)
    assert trigger.next_after(MONDAY + timedelta(minutes=5, seconds=55)) == MONDAY + timedelta(
        minutes=6
    )


@pytest.mark.parametrize(
    "alias,expr", [("@daily", "0 0 * * *"), ("@hourly", "0 * * * *"), ("@weekly", "0 0 * * 0")]
)
def test_alias_fires_as_its_expansion(alias: str, expr: str) -> None:
    a, b = cron_trigger(alias), cron_trigger(expr)
    assert a.times_between(MONDAY, MONDAY + timedelta(days=8), 50) == b.times_between(
        MONDAY, MONDAY + timedelta(days=8), 50
    )


def test_next_after_a_fire_time_is_the_following_one() -> None:
    trigger = cron_trigger("0 * * * *")
    assert trigger.next_after(MONDAY) == MONDAY + timedelta(hours=1)
    assert trigger.next_after(MONDAY - timedelta(microseconds=1)) == MONDAY


def test_fire_times_are_in_the_schedule_zone() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    nxt = cron_trigger("0 9 * * *", berlin).next_after(MONDAY)
    assert nxt.tzinfo == berlin and nxt.hour == 9
    assert nxt.utcoffset() == timedelta(hours=1)


def test_next_after_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="aware"):
        cron_trigger("* * * * *").next_after(datetime(2026, 1, 1))


def test_bad_expression_is_a_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match="61"):
        cron_trigger("61 * * * *")


def test_start_and_end_bound_the_schedule() -> None:
    schedule = build_schedule(
        {
            "name": "bounded",
            "pipeline": "p",
            "cron": "0 * * * *",
            "start": "2026-03-02T05:00:00+00:00",
            "end": "2026-03-02T07:00:00+00:00",
        },
        None,
        None,
    )
    trigger = time_trigger(schedule)
    assert trigger.next_after(MONDAY) == MONDAY + timedelta(hours=5)  # start itself fires
    fires = trigger.times_between(MONDAY, MONDAY + timedelta(days=1))
    assert [f.hour for f in fires.times] == [5, 6, 7] and fires.count == 3
    assert trigger.next_after(MONDAY + timedelta(hours=7)) is None


def test_two_days_of_a_minutely_cron_count_2880() -> None:
    fires = cron_trigger("* * * * *").times_between(MONDAY, MONDAY + timedelta(days=2), limit=3)
    assert fires.count == 2880 and not fires.more
    assert fires.times == [MONDAY + timedelta(minutes=k) for k in (1, 2, 3)]


def test_newest_returns_the_latest_fire_times_oldest_first() -> None:
    fires = cron_trigger("* * * * *").times_between(
        MONDAY, MONDAY + timedelta(days=2), limit=2, newest=True
    )
    end = MONDAY + timedelta(days=2)
    assert fires.times == [end - timedelta(minutes=1), end] and fires.count == 2880


def test_newest_of_a_sparse_cron_looks_back_far_enough() -> None:
    fires = cron_trigger("0 0 1 1 *").times_between(
        MONDAY - timedelta(days=3 * 366), MONDAY, limit=1, newest=True
    )
    assert fires.times == [datetime(2026, 1, 1, tzinfo=UTC)] and fires.count == 3


def test_count_of_a_per_second_cron_stops_at_the_cap() -> None:
    fires = cron_trigger("* * * * * *").times_between(MONDAY, MONDAY + timedelta(days=2), 1)
    assert fires.count == COUNT_CAP + 1 and fires.more
    assert fires.times == [MONDAY + timedelta(seconds=1)]


def test_per_second_cron_count_is_exact_below_the_cap() -> None:
    fires = cron_trigger("*/2 * * * * *").times_between(MONDAY, MONDAY + timedelta(hours=1), 0)
    assert fires.count == 1800 and fires.times == []
