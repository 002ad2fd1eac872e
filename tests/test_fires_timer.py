"""The daemon's APScheduler jobs fire at exactly the times ``next``/``schedules`` print."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import time_machine
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from scheduler.definitions import build_schedule
from scheduler.triggers import APSchedulerTrigger, cron_trigger, time_trigger

NOW = datetime(2025, 3, 29, 22, 0, tzinfo=UTC)  # the evening before Berlin springs forward
BERLIN = ZoneInfo("Europe/Berlin")


def test_first_fire_time_is_next_after_now() -> None:
    trigger = cron_trigger("30 2 * * *", BERLIN)
    aps = APSchedulerTrigger(trigger)
    assert aps.get_next_fire_time(None, NOW) == trigger.next_after(NOW)
    assert aps.get_next_fire_time(None, NOW) == datetime(2025, 3, 30, 3, 0, tzinfo=BERLIN)


def test_fire_time_equal_to_now_still_counts_on_registration() -> None:
    aps = APSchedulerTrigger(cron_trigger("0 * * * *"))
    assert aps.get_next_fire_time(None, NOW) == NOW


def test_next_fire_time_is_strictly_after_the_previous_even_if_the_clock_went_back() -> None:
    aps = APSchedulerTrigger(cron_trigger("*/15 * * * *"))
    previous = NOW + timedelta(minutes=30)
    assert aps.get_next_fire_time(previous, NOW) == NOW + timedelta(minutes=45)


def test_trigger_applies_no_jitter() -> None:
    schedule = build_schedule(
        {"name": "j", "pipeline": "p", "cron": "0 * * * *", "jitter": "5m"}, None, None
    )
    aps = APSchedulerTrigger(time_trigger(schedule))
    assert {aps.get_next_fire_time(None, NOW) for _ in range(20)} == {NOW}


def test_asyncio_scheduler_job_runs_on_our_fire_times() -> None:
    trigger = cron_trigger("*/20 30 2 * * *", BERLIN)

    async def scenario() -> tuple[datetime, list[datetime]]:
        scheduler = AsyncIOScheduler(timezone=UTC)
        scheduler.start(paused=True)
        try:
            job = scheduler.add_job(lambda: None, trigger=APSchedulerTrigger(trigger))
            # What APScheduler would run if woken a day later: every fire time it walks.
            missed = job._get_run_times(NOW + timedelta(days=1))
            return job.next_run_time, missed
        finally:
            scheduler.shutdown(wait=False)

    with time_machine.travel(NOW, tick=False):
        next_run, walked = asyncio.run(scenario())
    assert next_run == trigger.next_after(NOW)
    expected = trigger.times_between(NOW - timedelta(microseconds=1), NOW + timedelta(days=1))
    assert walked == expected.times
    assert [t.astimezone(BERLIN).strftime("%H:%M:%S") for t in walked] == [
        "03:00:00",
        "03:00:20",
        "03:00:40",
    ]


def test_fire_times_reach_apscheduler_in_utc_so_an_overlap_orders_right() -> None:
    # New York's 01:15 EDT and 01:05 EST: the second is later, though its wall time is earlier.
    trigger = cron_trigger("5,15 * * * *", ZoneInfo("America/New_York"))
    aps = APSchedulerTrigger(trigger)
    first = aps.get_next_fire_time(None, datetime(2025, 11, 2, 5, 10, tzinfo=UTC))
    second = aps.get_next_fire_time(first, first)
    assert first.tzinfo is UTC and second.tzinfo is UTC
    assert (first.hour, first.minute, second.hour, second.minute) == (5, 15, 6, 5)
    assert first < second
