"""A cron trigger answers the same whether its expression's first fire times were computed
before (by any trigger of that expression, from any moment) or not, and whether its zone is
UTC under one name or another: what a start with many schedules remembers never changes a
fire time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.triggers import cron_trigger
from scheduler.triggers import time as cron_time

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]
CRONS = [
    "30 2 * * *",
    "30 1 * * *",
    "*/15 * * * *",
    "0 */4 * * *",
    "0 0 13 * 5",
    "5,35 1-3 * * 0",
    "*/20 30 2 * * *",
    "0 0 1 1 *",
    "@hourly",
]
# Around Berlin's and New York's changes of 2025, where a remembered time is easiest to get wrong.
NEAR_CHANGES = st.sampled_from(
    [
        datetime(2025, 3, 30, 0, 0, tzinfo=UTC),
        datetime(2025, 10, 26, 0, 0, tzinfo=UTC),
        datetime(2025, 11, 2, 5, 0, tzinfo=UTC),
    ]
)
moments = st.one_of(
    st.datetimes(
        min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    st.builds(
        lambda base, minutes: base + timedelta(minutes=minutes),
        NEAR_CHANGES,
        st.integers(min_value=0, max_value=6 * 60),
    ),
)


@pytest.fixture(autouse=True)
def nothing_remembered() -> Iterator[None]:
    """Each test starts, and leaves, with no remembered fire times."""
    cron_time._RUNS.clear()
    yield
    cron_time._RUNS.clear()


def _fresh(expression: str, zone: str, after: datetime, n: int) -> list[datetime]:
    cron_time._RUNS.clear()
    return cron_trigger(expression, zone).next_times(after, n)


@settings(max_examples=300, deadline=None)
@given(
    expression=st.sampled_from(CRONS),
    zone=st.sampled_from(ZONES),
    asked=st.lists(moments, min_size=2, max_size=6),
)
def test_fire_times_are_the_same_with_or_without_what_was_remembered(
    expression: str, zone: str, asked: list[datetime]
) -> None:
    expected = [_fresh(expression, zone, after, 3) for after in asked]
    cron_time._RUNS.clear()
    # One trigger per question, as a start builds one per schedule: all share the expression.
    answers = [cron_trigger(expression, zone).next_times(after, 3) for after in asked]
    assert answers == expected


@settings(max_examples=100, deadline=None)
@given(expression=st.sampled_from(CRONS), after=moments)
def test_the_moments_just_before_and_after_a_remembered_time_agree(
    expression: str, after: datetime
) -> None:
    for zone in ZONES:
        first, second = _fresh(expression, zone, after, 2)
        for moment in (first - timedelta(microseconds=1), first, second - timedelta(seconds=1)):
            expected = _fresh(expression, zone, moment, 2)
            cron_time._RUNS.clear()
            cron_trigger(expression, zone).next_times(after, 2)  # remembered from ``after``
            assert cron_trigger(expression, zone).next_times(moment, 2) == expected


@settings(max_examples=100, deadline=None)
@given(expression=st.sampled_from(CRONS), after=moments)
def test_utc_fires_at_the_same_instants_under_any_of_its_names(
    expression: str, after: datetime
) -> None:
    utc = cron_trigger(expression, "UTC").next_times(after, 5)
    for name in ("Etc/UTC", "Etc/GMT", "GMT"):
        same = cron_trigger(expression, ZoneInfo(name)).next_times(after, 5)
        assert [t.astimezone(UTC) for t in same] == [t.astimezone(UTC) for t in utc]
