"""Durations as users write them, in systemd's spellings: ``90s``, ``500ms``, ``5min``,
``1h 30min``, ``1d12h``, ``2w``, or a plain number of seconds. Whatever ``format_duration``
prints reads back through ``parse_duration``."""

from __future__ import annotations

import math
import re

_SECONDS_PER = {
    "us": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 7 * 86400.0,
    "M": 30.44 * 86400.0,  # systemd's month and year: average lengths
    "y": 365.25 * 86400.0,
}
# systemd's names for each unit (case matters: ``m`` is a minute, ``M`` a month).
_SPELLINGS = {
    "us": ("us", "usec", "µs", "μs"),
    "ms": ("ms", "msec"),
    "s": ("s", "sec", "second", "seconds"),
    "m": ("m", "min", "minute", "minutes"),
    "h": ("h", "hr", "hour", "hours"),
    "d": ("d", "day", "days"),
    "w": ("w", "week", "weeks"),
    "M": ("M", "month", "months"),
    "y": ("y", "year", "years"),
}
_UNIT_OF = {spelling: unit for unit, names in _SPELLINGS.items() for spelling in names}
# Longest spellings first, so "ms" is not read as "m" followed by junk, nor "min" as "m".
_UNIT_PATTERN = "|".join(sorted(map(re.escape, _UNIT_OF), key=len, reverse=True))
_PART = re.compile(rf"\s*(\d+(?:\.\d*)?|\.\d+)\s*({_UNIT_PATTERN})(?![A-Za-z])")
_ACCEPTED = "write e.g. 90s, 500ms, 5min, 1h 30min, 1d12h, 2w, or a number of seconds"


def parse_duration(value: str | int | float) -> float:
    """Return the duration in seconds; raise ValueError with the accepted forms."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"a duration cannot be negative: {value!r}")
        return float(value)
    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise ValueError(f"not a duration: {value!r} ({_ACCEPTED})")
        if seconds < 0:
            raise ValueError(f"a duration cannot be negative: {value!r}")
        return seconds
    pos, total = 0, 0.0
    while pos < len(text):
        match = _PART.match(text, pos)
        if match is None:
            break
        total += float(match.group(1)) * _SECONDS_PER[_UNIT_OF[match.group(2)]]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"not a duration: {value!r} ({_ACCEPTED})")
    return total


def format_duration(seconds: float | None) -> str:
    """A short label for a duration, in its two largest units: ``4ms``, ``2.5s``, ``4m 12s``,
    ``1h 03m``, ``2d 05h``. It reads back through ``parse_duration`` (to its precision)."""
    if seconds is None:
        return "-"
    if round(seconds * 1000) < 1000:
        return f"{seconds * 1000:.0f}ms"
    if round(seconds, 1) < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def backoff_wait(delay: float, backoff: float, cap: float, failed_attempt: int) -> float:
    """Seconds to wait after attempt ``failed_attempt`` failed: ``delay`` × ``backoff``^(n-1),
    at most ``cap``; 0 when there is no delay."""
    if delay <= 0:
        return 0.0
    try:
        wait = delay * backoff ** (failed_attempt - 1)
    except OverflowError:
        return cap
    return min(wait, cap)
