"""A shifted, sped-up clock for tests of a real daemon subprocess (
never set the system clock). Honoured only when ``PIPESCHED_TESTING=1``.

``PIPESCHED_TEST_CLOCK=OFFSET,RATE`` (seconds, factor), or ``file:PATH`` whose content is
``OFFSET RATE`` and is re-read on every call, so a test can make the wall clock jump while the
daemon runs. Wall time = real start + OFFSET + (real elapsed) * RATE; monotonic time is real
(scaled by RATE) and never jumps.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from scheduler.core.clock import SYSTEM_CLOCK, Clock


class ShiftedClock(Clock):
    def __init__(self, offset: float = 0.0, rate: float = 1.0, path: Path | None = None) -> None:
        self._offset, self._rate, self._path = offset, rate, path
        self._real_start = time.time()
        self._mono_start = time.monotonic()

    def _settings(self) -> tuple[float, float]:
        if self._path is None:
            return self._offset, self._rate
        try:
            offset, rate = self._path.read_text().split()
            return float(offset), float(rate)
        except (OSError, ValueError):
            return self._offset, self._rate

    @property
    def rate(self) -> float:
        return self._settings()[1]

    def now(self) -> datetime:
        offset, rate = self._settings()
        elapsed = (time.monotonic() - self._mono_start) * rate
        return datetime.fromtimestamp(self._real_start, UTC) + timedelta(seconds=offset + elapsed)

    def monotonic(self) -> float:
        return (time.monotonic() - self._mono_start) * self._settings()[1]


def clock_from_env() -> Clock:
    spec = os.environ.get("PIPESCHED_TEST_CLOCK")
    if not spec or os.environ.get("PIPESCHED_TESTING") != "1":
        return SYSTEM_CLOCK
    if spec.startswith("file:"):
        return ShiftedClock(path=Path(spec[5:]))
    offset, _, rate = spec.partition(",")
    return ShiftedClock(float(offset or 0), float(rate or 1))
