"""APScheduler 3's part: waking up at each schedule's next nominal fire time.

APScheduler keeps only its in-memory job store, rebuilt from definitions and the store's fire
records at every start (its SQLAlchemy store pickles jobs and deletes rows it cannot read). The
nominal times come from ``JobSubmissionEvent.scheduled_run_times``: jobs are no-ops, and the
listener hands every due time to the daemon, whose dispatcher owns catch-up and overlap (APScheduler
would drop late runs; ``misfire_grace_time=None`` and ``coalesce=False`` make it report them all).

Under a test clock (scheduler.core.testclock), APScheduler's idea of "now" follows that clock and its
sleeps are scaled by the clock's rate. Nothing of this is active with the system clock.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

# APScheduler 3 ships no type information.
import apscheduler.schedulers.base as aps_base  # type: ignore[import-untyped, unused-ignore]
import structlog
from apscheduler.events import (  # type: ignore[import-untyped, unused-ignore]
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_SUBMITTED,
    JobSubmissionEvent,
)
from apscheduler.schedulers.asyncio import (  # type: ignore[import-untyped, unused-ignore]
    AsyncIOScheduler,
)

from scheduler.core.clock import SYSTEM_CLOCK, Clock

DueHandler = Callable[[str, list[datetime]], None]
log = structlog.get_logger("scheduler.fires.timer")

CLOCK_CHECK_SECONDS = 5.0
CLOCK_JUMP_SECONDS = 2.0


async def _no_op() -> None:
    """The job body: the work happens in the submission listener, which knows the nominal times."""


class _ClockedScheduler(AsyncIOScheduler):  # type: ignore[misc, unused-ignore]
    rate: float = 1.0

    def _start_timer(self, wait_seconds: float | None) -> None:
        scaled = None if wait_seconds is None else wait_seconds / max(self.rate, 1e-9)
        super()._start_timer(scaled)


class Firing:
    """Wakes the daemon at nominal fire times. ``on_due(name, times)`` runs in the event loop."""

    def __init__(self, on_due: DueHandler, clock: Clock = SYSTEM_CLOCK) -> None:
        self._on_due = on_due
        self.clock = clock
        if clock is not SYSTEM_CLOCK:
            _follow_clock(clock)
        self.scheduler = _ClockedScheduler(
            timezone=UTC,
            job_defaults={
                "misfire_grace_time": None,
                "coalesce": False,
                "max_instances": 1_000_000,
            },
        )
        self.scheduler.rate = getattr(clock, "rate", 1.0)
        self.scheduler.add_listener(self._submitted, EVENT_JOB_SUBMITTED | EVENT_JOB_MAX_INSTANCES)

    def start(self) -> None:
        self.scheduler.start()

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def set(self, name: str, trigger: Any, next_time: datetime | None) -> None:
        """Add or replace ``name``'s job so that it next fires at ``next_time`` (None: never)."""
        if self.scheduler.get_job(name) is not None:
            self.scheduler.remove_job(name)
        if next_time is None:
            return
        self.scheduler.add_job(_no_op, trigger=trigger, id=name, name=name, next_run_time=next_time)

    def remove(self, name: str) -> None:
        if self.scheduler.get_job(name) is not None:
            self.scheduler.remove_job(name)

    def next_time(self, name: str) -> datetime | None:
        job = self.scheduler.get_job(name)
        return job.next_run_time if job is not None else None

    def names(self) -> builtins.set[str]:
        return {job.id for job in self.scheduler.get_jobs()}

    def wakeup(self) -> None:
        """Look again now (after a clock jump or a wake from suspend)."""
        if self.scheduler.running:
            self.scheduler.wakeup()

    async def follow_clock_jumps(self) -> None:
        """Wake up when the wall clock jumps, so late times meet the catch-up rule at once
        instead of at the next planned wake-up: no kernel event tells a process that the wall
        clock jumped, so compare it with the monotonic clock every few seconds."""
        clock = self.clock
        last_wall, last_mono = clock.now(), clock.monotonic()
        # A test clock can jump at any moment: look more often so tests need not wait.
        period = CLOCK_CHECK_SECONDS if clock is SYSTEM_CLOCK else 0.25
        while True:
            await asyncio.sleep(period)
            wall, mono = clock.now(), clock.monotonic()
            drift = (wall - last_wall).total_seconds() - (mono - last_mono)
            if abs(drift) > CLOCK_JUMP_SECONDS:
                log.warning("clock_jumped", seconds=round(drift, 1))
                self.wakeup()
            last_wall, last_mono = wall, mono

    def _submitted(self, event: JobSubmissionEvent) -> None:
        self._on_due(event.job_id, list(event.scheduled_run_times))


def _follow_clock(clock: Clock) -> None:
    """Make APScheduler read ``clock`` for "now" (test clocks only)."""

    class ClockDatetime(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
            moment = clock.now()
            return moment.astimezone(tz) if tz is not None else moment.replace(tzinfo=None)

    aps_base.datetime = ClockDatetime
