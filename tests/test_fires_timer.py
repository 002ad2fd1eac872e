"""The daemon's timer hands each schedule's nominal fire times to the fire handler: each exactly
once, in order, late ones together, at exactly the times ``next``/``schedules`` print."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from scheduler.core.clock import Clock
from scheduler.core.testclock import ShiftedClock
from scheduler.definitions import build_schedule
from scheduler.fires.timer import Firing
from scheduler.triggers import cron_trigger, time_trigger

NOW = datetime(2025, 3, 29, 22, 0, tzinfo=UTC)  # the evening before Berlin springs forward
BERLIN = ZoneInfo("Europe/Berlin")
MINUTE = timedelta(minutes=1)


class MovableClock(Clock):
    """Stands still until the test moves it."""

    def __init__(self, now: datetime) -> None:
        self.moment = now

    def now(self) -> datetime:
        return self.moment

    def monotonic(self) -> float:
        return 0.0


class Recorder:
    """What the timer handed over: (schedule, nominal times) per call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[datetime]]] = []

    def __call__(self, name: str, times: list[datetime]) -> None:
        self.calls.append((name, times))

    def times(self, name: str) -> list[datetime]:
        return [t for n, times in self.calls if n == name for t in times]


async def _until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    """Let the loop run until ``condition`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not true in time"
        await asyncio.sleep(0.01)


async def _settle() -> None:
    """Let callbacks the timer scheduled with ``call_soon`` run."""
    for _ in range(3):
        await asyncio.sleep(0)


def test_missed_times_come_together_in_order_then_the_next() -> None:
    clock, seen = MovableClock(NOW), Recorder()
    trigger = cron_trigger("* * * * *")

    async def scenario() -> datetime | None:
        firing = Firing(seen, clock)
        firing.set("every", trigger, trigger.next_after(NOW))
        firing.start()
        await _settle()
        assert seen.calls == []  # nothing due yet
        clock.moment = NOW + 3 * MINUTE + timedelta(seconds=30)
        firing.wakeup()
        await _until(lambda: seen.calls)
        firing.shutdown()
        return firing.next_time("every")

    following = asyncio.run(scenario())
    assert seen.calls == [("every", [NOW + MINUTE, NOW + 2 * MINUTE, NOW + 3 * MINUTE])]
    assert following == NOW + 4 * MINUTE


def test_a_time_already_handed_over_never_comes_again_when_the_clock_goes_back() -> None:
    clock, seen = MovableClock(NOW), Recorder()
    trigger = cron_trigger("*/15 * * * *")

    async def scenario() -> None:
        firing = Firing(seen, clock)
        firing.set("quarter", trigger, trigger.next_after(NOW))
        firing.start()
        clock.moment = NOW + 15 * MINUTE
        firing.wakeup()
        await _until(lambda: seen.calls)
        clock.moment = NOW - timedelta(hours=1)  # the wall clock was set back
        firing.wakeup()
        await _settle()
        clock.moment = NOW + 30 * MINUTE
        firing.wakeup()
        await _until(lambda: len(seen.calls) == 2)
        firing.shutdown()

    asyncio.run(scenario())
    assert seen.times("quarter") == [NOW + 15 * MINUTE, NOW + 30 * MINUTE]


def test_a_replaced_or_removed_schedule_does_not_fire_at_its_old_time() -> None:
    clock, seen = MovableClock(NOW), Recorder()
    trigger = cron_trigger("0 * * * *")
    hour = timedelta(hours=1)

    async def scenario() -> set[str]:
        firing = Firing(seen, clock)
        firing.start()
        firing.set("moved", trigger, NOW + hour)
        firing.set("moved", trigger, NOW + 3 * hour)
        firing.set("gone", trigger, NOW + hour)
        firing.remove("gone")
        clock.moment = NOW + 2 * hour
        firing.wakeup()
        await _settle()
        assert seen.calls == []
        clock.moment = NOW + 3 * hour
        firing.wakeup()
        await _until(lambda: seen.calls)
        firing.shutdown()
        return firing.names()

    served = asyncio.run(scenario())
    assert seen.calls == [("moved", [NOW + 3 * hour])]
    assert served == {"moved"}


def test_a_schedule_past_its_end_leaves_the_timer() -> None:
    clock, seen = MovableClock(NOW), Recorder()
    schedule = build_schedule(
        {"name": "ends", "pipeline": "p", "cron": "0 * * * *", "end": NOW + timedelta(hours=2)},
        None,
        None,
    )
    trigger = time_trigger(schedule)

    async def scenario() -> set[str]:
        firing = Firing(seen, clock)
        firing.set("ends", trigger, trigger.next_after(NOW))
        firing.start()
        clock.moment = NOW + timedelta(hours=5)
        firing.wakeup()
        await _until(lambda: seen.calls)
        firing.shutdown()
        return firing.names()

    served = asyncio.run(scenario())
    assert seen.times("ends") == [NOW + timedelta(hours=1), NOW + timedelta(hours=2)]
    assert served == set()


def test_the_timer_wakes_by_itself_at_each_nominal_time() -> None:
    # Ten clock minutes to the real second: the wait for each minute is real, and short.
    clock, seen = ShiftedClock(rate=600.0), Recorder()
    trigger = cron_trigger("* * * * *")

    async def scenario() -> datetime:
        start = clock.now()
        firing = Firing(seen, clock)
        firing.set("minutely", trigger, trigger.next_after(start))
        firing.start()
        await _until(lambda: len(seen.times("minutely")) >= 3)
        firing.shutdown()
        return start

    start = asyncio.run(scenario())
    handed = seen.times("minutely")
    assert handed[:3] == trigger.next_times(start, 3)


def test_a_sooner_schedule_added_while_waiting_is_woken_for() -> None:
    clock, seen = ShiftedClock(rate=600.0), Recorder()
    hourly, minutely = cron_trigger("0 * * * *"), cron_trigger("* * * * *")

    async def scenario() -> None:
        firing = Firing(seen, clock)
        start = clock.now()
        firing.set("later", hourly, start + timedelta(days=1))
        firing.start()
        await _settle()
        firing.set("sooner", minutely, minutely.next_after(clock.now()))
        await _until(lambda: seen.times("sooner"))
        firing.shutdown()

    asyncio.run(scenario())
    assert seen.times("later") == []


def test_nominal_times_are_handed_over_without_jitter() -> None:
    clock, seen = MovableClock(NOW), Recorder()
    schedule = build_schedule(
        {"name": "j", "pipeline": "p", "cron": "0 * * * *", "jitter": "5m"}, None, None
    )
    trigger = time_trigger(schedule)

    async def scenario() -> None:
        firing = Firing(seen, clock)
        firing.set("j", trigger, trigger.next_after(NOW))
        firing.start()
        clock.moment = NOW + timedelta(hours=3)
        firing.wakeup()
        await _until(lambda: seen.calls)
        firing.shutdown()

    asyncio.run(scenario())
    assert seen.times("j") == [NOW + timedelta(hours=h) for h in (1, 2, 3)]


def test_times_across_a_dst_gap_are_the_triggers_own() -> None:
    clock, seen = MovableClock(NOW), Recorder()
    trigger = cron_trigger("*/20 30 2 * * *", BERLIN)

    async def scenario() -> None:
        firing = Firing(seen, clock)
        firing.set("gap", trigger, trigger.next_after(NOW))
        firing.start()
        clock.moment = NOW + timedelta(days=1)
        firing.wakeup()
        await _until(lambda: seen.calls)
        firing.shutdown()

    asyncio.run(scenario())
    walked = seen.times("gap")
    expected = trigger.times_between(NOW, NOW + timedelta(days=1))
    assert walked == [t.astimezone(UTC) for t in expected.times]
    assert [t.astimezone(BERLIN).strftime("%H:%M:%S") for t in walked] == [
        "03:00:00",
        "03:00:20",
        "03:00:40",
    ]


def test_fire_times_are_kept_in_utc_so_an_overlap_orders_right() -> None:
    # New York's 01:15 EDT and 01:05 EST: the second is later, though its wall time is earlier.
    start = datetime(2025, 11, 2, 5, 10, tzinfo=UTC)
    clock, seen = MovableClock(start), Recorder()
    trigger = cron_trigger("5,15 * * * *", ZoneInfo("America/New_York"))

    async def scenario() -> None:
        firing = Firing(seen, clock)
        firing.set("overlap", trigger, trigger.next_after(start))
        firing.start()
        clock.moment = datetime(2025, 11, 2, 6, 5, tzinfo=UTC)
        firing.wakeup()
        await _until(lambda: seen.calls)
        firing.shutdown()

    asyncio.run(scenario())
    first, second = seen.times("overlap")
    assert first.tzinfo is UTC and second.tzinfo is UTC
    assert (first.hour, first.minute, second.hour, second.minute) == (5, 15, 6, 5)
    assert first < second


def test_a_schedule_replaced_thousands_of_times_fires_once_at_its_last_time() -> None:
    clock, seen = MovableClock(NOW), Recorder()
    trigger = cron_trigger("* * * * *")

    async def scenario() -> None:
        firing = Firing(seen, clock)
        firing.start()
        for minutes in range(5_000, 0, -1):  # each replacement sooner than the one before
            firing.set("again", trigger, NOW + minutes * MINUTE)
        firing.set("other", trigger, NOW + 2 * MINUTE)
        clock.moment = NOW + 2 * MINUTE
        firing.wakeup()
        await _until(lambda: len(seen.calls) == 2)
        firing.shutdown()

    asyncio.run(scenario())
    assert sorted(seen.calls) == [
        ("again", [NOW + MINUTE, NOW + 2 * MINUTE]),
        ("other", [NOW + 2 * MINUTE]),
    ]
