"""Properties every time trigger keeps, for any moment: next_after is strictly later, monotone,
and agrees with times_between."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.definitions import build_schedule
from scheduler.triggers import time_trigger

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]
CRONS = [
    "30 2 * * *",
    "30 1 * * *",
    "*/15 * * * *",
    "0 */4 * * *",
    "0 0 13 * 5",
    "5,35 1-3 * * 0",
    "*/20 30 2 * * *",
    "@hourly",
]
RECURRENCES = [
    {
        "frequency": "Week",
        "interval": 2,
        "week_days": ["Monday", "Wednesday"],
        "time_of_day": "02:30",
    },
    {"frequency": "Day", "hours": [1, 2, 3], "minutes": [0, 30]},
    {"frequency": "Month", "interval": 2},
    {"frequency": "Minute", "interval": 7},
]
REGISTERED = datetime(2024, 6, 1, 12, 34, 56, tzinfo=UTC)

moments = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


@st.composite
def triggers(draw: st.DrawFn):
    zone = draw(st.sampled_from(ZONES))
    kind = draw(st.sampled_from(["cron", "interval", "recurrence"]))
    if kind == "cron":
        spec = {"cron": draw(st.sampled_from(CRONS))}
    elif kind == "interval":
        spec = {"interval": draw(st.sampled_from([1, 90, 900, 86400 * 3 + 7]))}
    else:
        spec = {"recurrence": draw(st.sampled_from(RECURRENCES))}
    schedule = build_schedule({"name": "p", "pipeline": "p", "timezone": zone, **spec}, None, None)
    return time_trigger(schedule, REGISTERED)


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(triggers(), moments)
def test_next_after_is_strictly_later_and_in_the_schedule_zone(trigger, after) -> None:
    nxt = trigger.next_after(after)
    assert utc(nxt) > after
    assert nxt.tzinfo == trigger.zone
    assert (
        utc(nxt).astimezone(trigger.zone) == nxt
        and nxt.fold == utc(nxt).astimezone(trigger.zone).fold
    )


@SETTINGS
@given(triggers(), moments, st.integers(min_value=0, max_value=3 * 86400))
def test_next_after_is_monotone(trigger, after, gap) -> None:
    later = after + timedelta(seconds=gap)
    assert utc(trigger.next_after(after)) <= utc(trigger.next_after(later))


@SETTINGS
@given(triggers(), moments)
def test_nothing_fires_between_a_moment_and_its_next_fire(trigger, after) -> None:
    nxt = trigger.next_after(after)
    fires = trigger.times_between(after, nxt, limit=5)
    assert fires.times == [nxt] and fires.count == 1
    assert trigger.times_between(after, utc(nxt) - timedelta(microseconds=1)).count == 0


@SETTINGS
@given(triggers(), moments, st.integers(min_value=1, max_value=2 * 86400))
def test_times_between_is_next_after_repeated(trigger, start, span) -> None:
    end = start + timedelta(seconds=span)
    fires = trigger.times_between(start, end, limit=50)
    walked, moment = [], start
    while len(walked) < 50:
        moment = trigger.next_after(moment)
        if utc(moment) > end:
            break
        walked.append(moment)
    assert [utc(f) for f in fires.times] == [utc(f) for f in walked]
    assert fires.count >= len(fires.times)
    newest = trigger.times_between(start, end, limit=3, newest=True)
    if fires.count <= 50:
        assert [utc(f) for f in newest.times] == [utc(f) for f in fires.times[-3:]]
    assert newest.count == fires.count
