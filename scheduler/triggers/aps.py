"""The daemon's APScheduler (3.x) face of a ``TimeTrigger``, apart from the triggers themselves:
importing APScheduler reads package metadata, which a command that only prints fire times
should not pay for (``triggers.time`` hands this class out on first use)."""

from __future__ import annotations

from datetime import UTC, datetime

from apscheduler.triggers.base import BaseTrigger

from scheduler.triggers.base import MICROSECOND, TimeTrigger

# -- APScheduler ----------------------------------------------------------------------------------


class APSchedulerTrigger(BaseTrigger):  # type: ignore[misc]  # APScheduler 3 ships no types
    """The daemon's APScheduler (3.x) face of a ``TimeTrigger``: the job fires at exactly the
    times ``next``/``schedules`` print (handed over in UTC, the same instants). Jitter is not applied
    here: the dispatcher adds it after the nominal time is recorded, so the fire record keeps the nominal time."""

    __slots__ = ("trigger",)

    def __init__(self, trigger: TimeTrigger) -> None:
        self.trigger = trigger

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        # After a fire, the next is strictly after it (even if the wall clock went back: no
        # nominal time fires twice); on registration, a fire time equal to now still counts.
        after = previous_fire_time if previous_fire_time is not None else now - MICROSECOND
        moment = self.trigger.next_after(after)
        # In UTC: APScheduler compares fire times with ``<=`` and sorts them, and Python
        # compares two datetimes of one zone by wall time, ignoring fold (wrong in an overlap).
        return moment.astimezone(UTC) if moment is not None else None

    def __str__(self) -> str:
        return f"pipesched[{self.trigger!r}]"

    def __repr__(self) -> str:
        return f"<APSchedulerTrigger {self.trigger!r}>"
