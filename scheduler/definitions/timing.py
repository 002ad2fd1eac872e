"""Cron expressions and time zones as schedules.yaml writes them.

cronsim applies Debian cron's DST rule only to five-field expressions, so the optional leading
seconds field is split off and interpreted here; the trigger code uses the same helpers.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from datetime import datetime

CRON_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_SECONDS_ITEM = re.compile(r"^(\*|\d+(?:-\d+)?)(?:/(\d+))?$")


def split_cron(expr: str) -> tuple[str | None, str]:
    """``(seconds field or None, five-field expression)``. Aliases like ``@daily`` are expanded.

    cronsim applies Debian cron's DST rule only to five-field expressions, so the optional
    leading seconds field is split off here and interpreted by us.
    """
    text = expr.strip()
    if text.lower() in CRON_ALIASES:
        return None, CRON_ALIASES[text.lower()]
    parts = text.split()
    if len(parts) == 6:
        return parts[0], " ".join(parts[1:])
    return None, " ".join(parts)


def parse_seconds_field(field: str) -> list[int]:
    """The seconds a cron seconds field names (``*``, ``N``, ``N-M``, ``*/S``, lists)."""
    seconds: set[int] = set()
    for item in field.split(","):
        match = _SECONDS_ITEM.fullmatch(item)
        if not match:
            raise ValueError(f"bad seconds field {field!r}")
        span, step = match.group(1), int(match.group(2) or 1)
        if span == "*":
            low, high = 0, 59
        elif "-" in span:
            low, high = (int(x) for x in span.split("-"))
        else:
            low = high = int(span)
            if match.group(2):
                high = 59
        if not (0 <= low <= high <= 59) or step < 1:
            raise ValueError(f"bad seconds field {field!r} (seconds are 0-59)")
        seconds.update(range(low, high + 1, step))
    return sorted(seconds)


@functools.lru_cache(maxsize=4096)
def check_cron(expr: str) -> None:
    """Raise ValueError naming what is wrong with a cron expression. Remembered per expression
    (an error is not): a start validates each schedule's, then builds its trigger, which checks
    it again, and many schedules share one expression."""
    from cronsim import CronSim, CronSimError

    seconds, five = split_cron(expr)
    if len(five.split()) != 5:
        raise ValueError(
            f"cron expression {expr!r} must have 5 fields (minute hour day month weekday), "
            "or 6 with seconds first"
        )
    if seconds is not None:
        parse_seconds_field(seconds)
    try:
        CronSim(five, datetime(2000, 1, 1))
    except CronSimError as exc:
        raise ValueError(f"bad cron expression {expr!r}: {str(exc).lower()}") from None


def zone_name(name: str) -> str:
    """The IANA name for a time zone given as IANA or Windows name; ValueError when unknown."""
    try:
        zoneinfo.ZoneInfo(name)
        return name
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        pass
    try:  # tzlocal (an APScheduler dependency) carries the CLDR Windows-to-IANA table
        from tzlocal.windows_tz import win_tz
    except ImportError:  # pragma: no cover - tzlocal comes with apscheduler
        win_tz = {}
    if name in win_tz:
        return win_tz[name]
    raise ValueError(f"unknown time zone '{name}'")
