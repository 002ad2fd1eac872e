"""Cron across DST (RELIABILITY 10-11) in Europe/Berlin and America/New_York: Debian cron's rule
as DESIGN states it, and a per-second sweep of next_after against a brute-force reference."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from scheduler.triggers import cron_trigger

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
# (zone, day of the change, the wall hour that is skipped or repeated)
SPRING = [(BERLIN, date(2025, 3, 30), 2), (NEW_YORK, date(2025, 3, 9), 2)]
FALL = [(BERLIN, date(2025, 10, 26), 2), (NEW_YORK, date(2025, 11, 2), 1)]


def ids(case: tuple) -> str:
    return f"{case[0].key}-{case[1]}"


def day_span(zone: ZoneInfo, day: date) -> tuple[datetime, datetime]:
    """The local day [00:00, next 00:00) as aware datetimes."""
    return (
        datetime.combine(day, time(), tzinfo=zone),
        datetime.combine(day + timedelta(days=1), time(), tzinfo=zone),
    )


def real_gaps(fires: list[datetime]) -> set[timedelta]:
    return {b.astimezone(UTC) - a.astimezone(UTC) for a, b in pairwise(fires)}


def fires_on(expr: str, zone: ZoneInfo, day: date) -> list[datetime]:
    start, end = day_span(zone, day)
    tiny = timedelta(microseconds=1)
    return cron_trigger(expr, zone).times_between(start - tiny, end - tiny, 1000).times


# -- spring forward -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", SPRING, ids=ids)
def test_fixed_time_in_gap_fires_once_at_first_valid_time(case) -> None:
    zone, day, hour = case
    fires = fires_on(f"30 {hour} * * *", zone, day)
    assert [f.strftime("%H:%M %Z") for f in fires] == [f"03:00 {fires[0].tzname()}"]
    assert fires[0].dst()


@pytest.mark.parametrize("case", SPRING, ids=ids)
def test_every_four_hours_keeps_its_wall_clock_cadence(case) -> None:
    zone, day, _ = case
    fires = fires_on("0 */4 * * *", zone, day)
    assert [f.hour for f in fires] == [0, 4, 8, 12, 16, 20]
    assert all(f.minute == 0 for f in fires)


@pytest.mark.parametrize("case", SPRING, ids=ids)
def test_every_fifteen_minutes_leaves_no_gap_over_fifteen_real_minutes(case) -> None:
    zone, day, _ = case
    fires = fires_on("*/15 * * * *", zone, day)
    gaps = real_gaps(fires)
    assert gaps == {timedelta(minutes=15)}
    assert len(fires) == 23 * 4  # the day has 23 hours


# -- fall back ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", FALL, ids=ids)
def test_fixed_time_in_overlap_fires_once_in_first_pass(case) -> None:
    zone, day, hour = case
    fires = fires_on(f"30 {hour} * * *", zone, day)
    assert len(fires) == 1
    assert (fires[0].hour, fires[0].minute) == (hour, 30)
    assert fires[0].dst()  # the first pass is still summer time


@pytest.mark.parametrize("case", FALL, ids=ids)
def test_every_fifteen_minutes_runs_through_repeated_hour(case) -> None:
    zone, day, hour = case
    fires = fires_on("*/15 * * * *", zone, day)
    in_repeated_hour = [f for f in fires if f.hour == hour]
    assert len(in_repeated_hour) == 8  # both passes
    assert [bool(f.dst()) for f in in_repeated_hour] == [True] * 4 + [False] * 4
    gaps = real_gaps(fires)
    assert gaps == {timedelta(minutes=15)}
    assert len(fires) == 25 * 4


@pytest.mark.parametrize("case", FALL, ids=ids)
def test_hourly_with_wildcard_hour_fires_in_both_passes(case) -> None:
    zone, day, hour = case
    fires = fires_on("0 * * * *", zone, day)
    assert [f.hour for f in fires].count(hour) == 2
    assert len(fires) == 25


def test_next_after_inside_second_pass_skips_first_pass_fire() -> None:
    # 01:30 EDT has fired; at 01:20 EST (after it in real time) the next is tomorrow's.
    after = datetime(2025, 11, 2, 1, 20, tzinfo=NEW_YORK, fold=1)
    assert after.utcoffset() == timedelta(hours=-5)
    nxt = cron_trigger("30 1 * * *", NEW_YORK).next_after(after)
    assert nxt == datetime(2025, 11, 3, 1, 30, tzinfo=NEW_YORK)


# -- per-second sweep against a brute-force reference --------------------------------------------


def first_valid(wall: datetime, zone: ZoneInfo) -> datetime:
    """Reference: the wall time itself (first pass), or the next wall minute that exists."""
    while True:
        aware = wall.replace(tzinfo=zone, fold=0)
        if aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall:
            return aware
        wall += timedelta(minutes=1)


def reference_fires(
    zone: ZoneInfo,
    day: date,
    minutes: set[int],
    hours: set[int],
    seconds: list[int] | None = None,
) -> np.ndarray:
    """Fire instants (POSIX seconds) from two days before ``day`` to two after, by Debian
    cron's rule stated directly: fixed minute and hour → each wall time once (first pass, or
    the first valid minute after a gap); otherwise every real minute whose wall time matches."""
    fixed = len(minutes) == 1 and len(hours) == 1
    days = [day + timedelta(days=k) for k in range(-2, 3)]
    instants: set[int] = set()
    if fixed:
        for d in days:
            for h in hours:
                for m in minutes:
                    wall = datetime.combine(d, time(h, m))
                    instants.add(int(first_valid(wall, zone).timestamp()))
    else:
        first = int(datetime.combine(days[0], time(), tzinfo=zone).timestamp())
        for ts in range(first, first + 5 * 86400, 60):
            local = datetime.fromtimestamp(ts, zone)
            if local.minute in minutes and local.hour in hours:
                instants.add(ts)
    fires = sorted(instants)
    if seconds is not None:
        fires = sorted(m + s for m in fires for s in seconds)
    return np.array(fires, dtype=np.int64)


def sweep(expr: str, zone: ZoneInfo, day: date, reference: np.ndarray, every: int = 1) -> int:
    """Check next_after(t) for t = every ``every``-th second of the local day, plus every second
    within 20 s of each reference fire and from 01:00 to 04:00 (every change here falls in it);
    return how many were checked."""
    start, end = (int(m.timestamp()) for m in day_span(zone, day))
    points = set(range(start, end, every))
    for fire in reference[(reference >= start) & (reference < end)]:
        points.update(range(int(fire) - 20, int(fire) + 20))
    points.update(range(start + 3600, start + 4 * 3600))
    points = np.array(sorted(p for p in points if start <= p < end), dtype=np.int64)
    expected = reference[np.searchsorted(reference, points, side="right")]
    trigger = cron_trigger(expr, zone)
    got = np.array(
        [int(trigger.next_after(datetime.fromtimestamp(int(p), UTC)).timestamp()) for p in points]
    )
    wrong = np.nonzero(got != expected)[0]
    assert wrong.size == 0, [
        (
            datetime.fromtimestamp(int(points[i]), zone).isoformat(),
            datetime.fromtimestamp(int(got[i]), zone).isoformat(),
            datetime.fromtimestamp(int(expected[i]), zone).isoformat(),
        )
        for i in wrong[:5]
    ]
    return len(points)


FULL = [
    ("30 2 * * *", BERLIN, date(2025, 3, 30), {30}, {2}, None),
    ("*/15 * * * *", BERLIN, date(2025, 3, 30), {0, 15, 30, 45}, set(range(24)), None),
    ("30 1 * * *", NEW_YORK, date(2025, 11, 2), {30}, {1}, None),
    ("*/15 * * * *", NEW_YORK, date(2025, 11, 2), {0, 15, 30, 45}, set(range(24)), None),
]


@pytest.mark.parametrize(
    "expr,zone,day,minutes,hours,seconds", FULL, ids=[f"{c[1].key}-{c[2]}-{c[0]}" for c in FULL]
)
def test_next_after_matches_reference_for_every_second_of_dst_day(
    expr, zone, day, minutes, hours, seconds
) -> None:
    reference = reference_fires(zone, day, minutes, hours, seconds)
    checked = sweep(expr, zone, day, reference, every=1)
    start, end = day_span(zone, day)
    assert checked == end.timestamp() - start.timestamp()  # every second of the 23/25-hour day


SAMPLED = [
    (expr, zone, day, minutes, hours, seconds)
    for zone, day, _ in SPRING + FALL
    for expr, minutes, hours, seconds in [
        ("30 2 * * *", {30}, {2}, None),
        ("30 1 * * *", {30}, {1}, None),
        ("0 */4 * * *", {0}, {0, 4, 8, 12, 16, 20}, None),
        ("*/15 * * * *", {0, 15, 30, 45}, set(range(24)), None),
        ("*/20 30 2 * * *", {30}, {2}, [0, 20, 40]),
    ]
]


@pytest.mark.parametrize(
    "expr,zone,day,minutes,hours,seconds",
    SAMPLED,
    ids=[f"{c[1].key}-{c[2]}-{c[0]}" for c in SAMPLED],
)
def test_next_after_matches_reference_near_every_fire_and_change(
    expr, zone, day, minutes, hours, seconds
) -> None:
    reference = reference_fires(zone, day, minutes, hours, seconds)
    sweep(expr, zone, day, reference, every=97)
