"""Durations read in systemd's spellings, and every label pipesched prints reads back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.core.durations import format_duration, parse_duration

MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("5min", 5 * MINUTE),
        ("1h 30min", 90 * MINUTE),
        ("1h30min", 90 * MINUTE),
        ("1h30m", 90 * MINUTE),
        ("2w", 14 * DAY),
        ("1d12h", 36 * HOUR),
        ("1d 12h", 36 * HOUR),
        ("90s", 90.0),
        ("90", 90.0),
        ("2.5", 2.5),
        ("1.5h", 1.5 * HOUR),
        ("3 weeks", 21 * DAY),
        ("2 hours 5 minutes", 2 * HOUR + 5 * MINUTE),
        ("1sec 250msec", 1.25),
        ("750us", 0.00075),
        ("1y", 365.25 * DAY),
        ("1M", 30.44 * DAY),
        ("  15m  ", 15 * MINUTE),
    ],
)
def test_systemd_spellings_read_as_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", "h", "3 fortnights", "1h 30", "-5s", "5 s s", "1hour30", "nan"]
)
def test_what_is_not_a_duration_is_refused_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a duration|cannot be negative") as info:
        parse_duration(text)
    if "negative" not in str(info.value):
        assert "1h 30min" in str(info.value)


def test_minutes_and_months_differ_by_case() -> None:
    assert parse_duration("1m") == MINUTE
    assert parse_duration("1M") > 30 * DAY


def _precision(label: str) -> float:
    """Half the last printed unit: what rounding to that label may have lost (or a whole
    unit where the label truncates: hours within days, minutes within hours)."""
    if label.endswith("ms"):
        return 0.0005
    if label.endswith("s") and " " not in label:
        return 0.05
    if label.endswith("s"):
        return 0.5
    if label.endswith("m"):
        return MINUTE
    return HOUR


@given(st.floats(min_value=0, max_value=10 * 365 * DAY, allow_nan=False))
def test_every_printed_duration_reads_back_to_what_it_printed(seconds: float) -> None:
    label = format_duration(seconds)
    read = parse_duration(label)
    assert abs(read - seconds) <= _precision(label) + 1e-9 * max(seconds, 1)
    assert format_duration(read) == label  # the label is a fixed point: nothing drifts
