"""The one clock of pipesched: injected everywhere so tests control time instead of waiting."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class Clock:
    """Wall time (aware, UTC) and monotonic time. Tests pass their own subclass."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


SYSTEM_CLOCK = Clock()


def iso(moment: datetime | None) -> str | None:
    """The fixed-width UTC form, ``2026-11-25T13:02:14.123456+00:00``, so strings sort as times."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
