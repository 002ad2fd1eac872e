"""Schedules in plain English, with the zone visible where wall-clock time matters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from scheduler.definitions import build_schedule
from scheduler.triggers import describe, describe_cron, expression

REGISTERED = datetime(2026, 3, 3, 10, 25, 40, tzinfo=UTC)  # a Tuesday


def schedule(**fields: Any):
    return build_schedule({"name": "s", "pipeline": "p", **fields}, None, None)


@pytest.mark.parametrize(
    "expr,text",
    [
        ("0 0 * * MON", "At 00:00, only on Monday"),
        ("0 0 * * 0", "At 00:00, only on Sunday"),
        ("0 0 * * 7", "At 00:00, only on Sunday"),
        ("@daily", "At 00:00"),
        ("*/15 * * * *", "Every 15 minutes"),
        ("0 0 13 * 5", "At 00:00, on day 13 of the month, or on Friday"),
        (
            "*/10 30 2 * * *",
            "Every 10 seconds, at 30 minutes past the hour, between 02:00 and 02:59",
        ),
    ],
)
def test_cron_in_plain_english(expr: str, text: str) -> None:
    assert describe_cron(expr) == text


def test_cron_description_shows_its_zone() -> None:
    text = describe(schedule(cron="0 0 * * MON", timezone="Europe/Berlin"))
    assert text == "At 00:00, only on Monday (Europe/Berlin)"


@pytest.mark.parametrize(
    "interval,text",
    [
        ("15m", "Every 15 minutes"),
        ("1h", "Every hour"),
        (90, "Every 90 seconds"),
        ("2d", "Every 2 days"),
    ],
)
def test_interval_in_plain_english(interval: Any, text: str) -> None:
    assert describe(schedule(interval=interval)) == text


def test_interval_with_start_names_it_with_its_zone() -> None:
    text = describe(
        schedule(interval="1h30m", start="2026-01-05T09:00:00", timezone="Europe/Berlin")
    )
    assert text == "Every 90 minutes, from 2026-01-05 09:00 CET"


@pytest.mark.parametrize(
    "recurrence,text",
    [
        (
            {
                "frequency": "Week",
                "interval": 2,
                "week_days": ["Monday", "Wednesday"],
                "time_of_day": "09:00",
            },
            "Every 2 weeks on Monday and Wednesday at 09:00 (UTC)",
        ),
        (
            {"frequency": "Day", "hours": [8, 16], "minutes": [30]},
            "Every day at 08:30 and 16:30 (UTC)",
        ),
        ({"frequency": "Day", "hours": [8]}, "Every day at 08:25 (UTC)"),
        ({"frequency": "Week"}, "Every week on Tuesday at 10:25:40 (UTC)"),
        ({"frequency": "Month", "interval": 3}, "Every 3 months on day 3 at 10:25:40 (UTC)"),
        ({"frequency": "Hour", "interval": 2}, "Every 2 hours"),
        (
            {"frequency": "Day", "hours": list(range(24)), "minutes": [0, 15, 30, 45]},
            "Every day at minutes 0, 15, 30 and 45 past hours 0-23 (UTC)",
        ),
    ],
)
def test_recurrence_in_plain_english(recurrence: dict, text: str) -> None:
    assert describe(schedule(recurrence=recurrence), REGISTERED) == text


def test_month_from_the_31st_says_what_shorter_months_do() -> None:
    rec = {"frequency": "Month", "start_time": "2026-01-31T08:00"}
    assert describe(schedule(recurrence=rec)) == (
        "Every month on day 31 (the last day in shorter months) at 08:00 (UTC)"
    )


def test_on_change_in_plain_english() -> None:
    watch = {"path": "inbox/", "patterns": ["*.csv"]}
    assert describe(schedule(on_change=watch)) == (
        "When files matching *.csv land in default:inbox/ (one run per file)"
    )


@pytest.mark.parametrize(
    "fields,short",
    [
        ({"cron": "0 0 * * MON"}, "0 0 * * MON"),
        ({"interval": "1h30m"}, "every 1h30m"),
        ({"recurrence": {"frequency": "Week", "interval": 2}}, "Week x2"),
        ({"on_change": {}}, "on_change"),
    ],
)
def test_expression_is_the_short_form(fields: dict, short: str) -> None:
    assert expression(schedule(**fields)) == short
