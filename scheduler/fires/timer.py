"""The timer: waking up at each schedule's next nominal fire time.

One heap of (next fire time, schedule) and one asyncio timer armed for the earliest: adding a
schedule is a heap push, so registering ten thousand costs milliseconds, and an idle daemon wakes
only when something is due (or once an hour, to look again). The timer is rebuilt from definitions
and the store's fire records at every start; nothing of it is kept.

When a schedule falls due, ``on_due(name, times)`` gets every nominal time it owes up to now, late
ones included (after a suspend or a clock jump): the fire handler owns catch-up and overlap. After
a fire the next time is strictly after the last one handed over, even if the wall clock went back,
so no nominal time fires twice.

Why not APScheduler 3, the timer before this one: each ``add_job`` inspects the job's callable and
keeps a job store, about 45 µs a schedule, so ten thousand schedules cost 0.45 s of start-up; its
own rules for missed and coalesced runs were switched off anyway, and what was left of it is this
heap and this timer.

"Now" is the clock's (a test clock shifts it), and waits are scaled by the clock's rate. Fire times
are kept in UTC: Python compares two datetimes of one zone by wall time and ignores ``fold``,
which is wrong inside a DST overlap.
"""

from __future__ import annotations

import asyncio
import builtins
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from scheduler.core.clock import SYSTEM_CLOCK, Clock
from scheduler.triggers.base import TimeTrigger

DueHandler = Callable[[str, list[datetime]], None]
log = structlog.get_logger("scheduler.fires.timer")

CLOCK_CHECK_SECONDS = 5.0
CLOCK_JUMP_SECONDS = 2.0
LONGEST_SLEEP_SECONDS = 3600.0
"""The timer looks again at least this often (in clock seconds): a wall clock that was slewed
rather than stepped, which no jump check sees, then delays a fire by no more than this."""


@dataclass
class _Entry:
    trigger: TimeTrigger
    next_time: datetime  # UTC
    serial: int  # the heap item that is current for this schedule; older items are stale


class Firing:
    """Wakes the daemon at nominal fire times. ``on_due(name, times)`` runs in the event loop."""

    def __init__(self, on_due: DueHandler, clock: Clock = SYSTEM_CLOCK) -> None:
        self._on_due = on_due
        self.clock = clock
        self._entries: dict[str, _Entry] = {}
        self._heap: list[tuple[datetime, int, str]] = []
        self._serials = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._armed: asyncio.Handle | None = None
        self._armed_for: datetime | None = None

    @property
    def running(self) -> bool:
        return self._loop is not None

    def start(self) -> None:
        """Start waking (on the running loop); times already due fire at once."""
        self._loop = asyncio.get_running_loop()
        self._wake_soon()

    def shutdown(self) -> None:
        if self._armed is not None:
            self._armed.cancel()
        self._loop, self._armed, self._armed_for = None, None, None

    def set(self, name: str, trigger: TimeTrigger, next_time: datetime | None) -> None:
        """Add or replace ``name`` so that it next fires at ``next_time`` (None: never), then at
        ``trigger``'s times after it."""
        if next_time is None:
            self.remove(name)
            return
        when = self._push(name, trigger, next_time)
        if self._loop is not None and (self._armed_for is None or when < self._armed_for):
            self._arm()

    def _push(self, name: str, trigger: TimeTrigger, next_time: datetime) -> datetime:
        """Serve ``name`` from ``next_time`` (returned in UTC); its older heap item goes stale.
        A heap grown mostly stale (schedules replaced again and again) is rebuilt."""
        when = next_time.astimezone(UTC)
        serial = next(self._serials)
        self._entries[name] = _Entry(trigger, when, serial)
        heapq.heappush(self._heap, (when, serial, name))
        if len(self._heap) > 2 * len(self._entries) + 1024:
            self._heap = [(e.next_time, e.serial, n) for n, e in self._entries.items()]
            heapq.heapify(self._heap)
        return when

    def remove(self, name: str) -> None:
        """Stop serving ``name`` (its heap item goes stale and is dropped when reached)."""
        self._entries.pop(name, None)

    def next_time(self, name: str) -> datetime | None:
        entry = self._entries.get(name)
        return entry.next_time if entry is not None else None

    def names(self) -> builtins.set[str]:
        return set(self._entries)

    def wakeup(self) -> None:
        """Look again now (after a clock jump or a wake from suspend)."""
        if self._loop is not None:
            self._wake_soon()

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

    # ---- waking -----------------------------------------------------------------------------

    def _wake_soon(self) -> None:
        assert self._loop is not None
        if self._armed is not None:
            self._armed.cancel()
        self._armed_for = None
        self._armed = self._loop.call_soon(self._fire_due)

    def _arm(self) -> None:
        """Sleep until the earliest next time (at most ``LONGEST_SLEEP_SECONDS``)."""
        assert self._loop is not None
        if self._armed is not None:
            self._armed.cancel()
            self._armed, self._armed_for = None, None
        earliest = self._earliest()
        now = self.clock.now()
        wait = LONGEST_SLEEP_SECONDS
        if earliest is not None:
            wait = min(max((earliest - now).total_seconds(), 0.0), wait)
            self._armed_for = earliest
        rate = max(getattr(self.clock, "rate", 1.0), 1e-9)
        self._armed = self._loop.call_later(wait / rate, self._fire_due)

    def _earliest(self) -> datetime | None:
        """The earliest next time served, dropping stale heap items on the way."""
        heap, entries = self._heap, self._entries
        while heap:
            when, serial, name = heap[0]
            entry = entries.get(name)
            if entry is not None and entry.serial == serial:
                return when
            heapq.heappop(heap)
        return None

    def _fire_due(self) -> None:
        """Hand every due schedule its due times, move each to its next time, sleep again."""
        self._armed, self._armed_for = None, None
        if self._loop is None:
            return
        now = self.clock.now()
        due: list[tuple[str, list[datetime]]] = []
        while (earliest := self._earliest()) is not None and earliest <= now:
            _, _, name = heapq.heappop(self._heap)
            entry = self._entries.pop(name)
            times, following = _times_until(entry, now)
            due.append((name, times))
            if following is not None:
                self._push(name, entry.trigger, following)
        for name, times in due:
            try:
                self._on_due(name, times)
            except Exception:  # one schedule's handler must never stop the timer
                log.exception("fire_handler_failed", schedule=name)
        self._arm()


def _times_until(entry: _Entry, now: datetime) -> tuple[list[datetime], datetime | None]:
    """Every fire time of ``entry`` from its next time up to ``now``, and the one after them
    (None once the schedule has ended). Each time is strictly after the one before it."""
    times: list[datetime] = []
    moment: datetime | None = entry.next_time
    while moment is not None and moment <= now:
        times.append(moment)
        following = entry.trigger.next_after(moment)
        moment = following.astimezone(UTC) if following is not None else None
    return times, moment
