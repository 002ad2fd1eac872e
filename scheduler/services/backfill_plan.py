"""A backfill's plan: the nominal times of a schedule in a range (its own trigger's times, read
in its zone), what each would become (run, or skipped as already fired or backfilled), and the
backfill's record in the store. Running it is ``backfill``'s."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from scheduler.core.clock import iso
from scheduler.core.errors import NotFound, PipeschedError
from scheduler.core.ids import new_run_id
from scheduler.store.backfills import Backfill, FireHolder
from scheduler.triggers.base import in_zone, to_utc
from scheduler.triggers.time import time_trigger

if TYPE_CHECKING:
    from scheduler.core.procinfo import Owner
    from scheduler.definitions.schedules import ScheduleDef
    from scheduler.fires.served import ServedDefinitions
    from scheduler.store import Store


#: The most nominal times one backfill may hold.
MAX_TIMES = 10_000
TRIGGER_PREFIX = "backfill:"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class BackfillError(PipeschedError):
    """A backfill that cannot be made as asked (a bad range, too many times, no such schedule)."""


# -- the range and the plan -----------------------------------------------------------------------


def parse_bound(text: str, zone: tzinfo, *, end: bool) -> datetime:
    """A range bound as the user wrote it: a date (``2026-03-01``: its first moment for the
    start, its last for the end) or an ISO time; without an offset, in the schedule's zone."""
    text = text.strip()
    try:
        if _DATE.match(text):
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time.max if end else time.min)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise BackfillError(
            f"{text!r} is neither a date (2026-03-01) nor an ISO time (2026-03-01T02:00+01:00)"
        ) from None
    if moment.tzinfo is None:
        # Wall time in the zone; the first of two readings in a repeated hour.
        moment = moment.replace(tzinfo=zone)
    return moment


@dataclass(frozen=True)
class PlannedTime:
    """One nominal time of a plan: ``run``, or ``skip`` with the reason; ``rerun`` when it runs
    although it has a fire record."""

    nominal_time: datetime
    action: str
    reason: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "nominal_time": iso(self.nominal_time),
            "action": self.action,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Plan:
    """The nominal times of ``schedule`` in ``[start, end]`` (those up to now), oldest first."""

    schedule: str
    timezone: str
    start: datetime
    end: datetime
    rerun: bool
    times: list[PlannedTime]

    @property
    def to_run(self) -> int:
        return sum(1 for t in self.times if t.action == "run")

    def to_json(self) -> dict[str, Any]:
        return {
            "schedule": self.schedule,
            "timezone": self.timezone,
            "from": iso(self.start),
            "to": iso(self.end),
            "rerun": self.rerun,
            "total": len(self.times),
            "to_run": self.to_run,
            "times": [t.to_json() for t in self.times],
        }


def nominal_times(
    schedule: ScheduleDef,
    registered_at: datetime | None,
    start: datetime,
    end: datetime,
    now: datetime,
) -> list[datetime]:
    """The schedule's own fire times in ``[start, min(end, now)]``, in its zone (times still to
    come are the schedule's, not a backfill's). BackfillError past ``MAX_TIMES``."""
    if schedule.on_change is not None:
        raise BackfillError(f"schedule '{schedule.name}' fires on files, not at times")
    if end < start:
        raise BackfillError(f"the range ends ({iso(end)}) before it starts ({iso(start)})")
    last = min(to_utc(end), to_utc(now))
    trigger = time_trigger(schedule, registered_at)
    fires = trigger.times_between(to_utc(start) - timedelta(microseconds=1), last, MAX_TIMES)
    if fires.count > MAX_TIMES:
        raise BackfillError(
            f"the range holds more than {MAX_TIMES} fire times of '{schedule.name}'; "
            "backfill a shorter range at a time"
        )
    return [in_zone(moment, schedule.zone) for moment in fires.times]


def skip_reason(holder: FireHolder | None) -> str | None:
    """Why a time held by this fire record is not run again (None: it is free)."""
    if holder is None:
        return None
    by_backfill = (holder.trigger or "").startswith(TRIGGER_PREFIX) or (
        holder.reason or ""
    ).startswith(TRIGGER_PREFIX)
    return "already backfilled" if by_backfill else "already fired"


def plan_backfill(
    store: Store,
    schedule: ScheduleDef,
    start: datetime,
    end: datetime,
    *,
    rerun: bool,
    now: datetime,
) -> Plan:
    """What a backfill would do to each time, as things stand; writes nothing."""
    registered_at = schedule_registered_at(store, schedule.name)
    times = nominal_times(schedule, registered_at, start, end, now)
    holders = store.fire_holders(schedule.name, [to_utc(t) for t in times])
    planned = []
    for moment in times:
        reason = skip_reason(holders.get(to_utc(moment)))
        if reason is None:
            planned.append(PlannedTime(moment, "run", None))
        elif rerun:
            planned.append(PlannedTime(moment, "run", f"rerun ({reason})"))
        else:
            planned.append(PlannedTime(moment, "skip", reason))
    return Plan(schedule.name, schedule.timezone, start, end, rerun, planned)


def create_backfill(
    store: Store,
    schedule: ScheduleDef,
    start: datetime,
    end: datetime,
    *,
    max_concurrent: int,
    rerun: bool,
    requested_by: str | None,
    owner: Owner | None,
    now: datetime,
) -> Backfill:
    """Record a backfill of every time in the range (each ``pending``); its runner runs it."""
    if max_concurrent < 1:
        raise BackfillError("--max-concurrent must be at least 1")
    times = nominal_times(schedule, schedule_registered_at(store, schedule.name), start, end, now)
    if not times:
        raise BackfillError(
            f"schedule '{schedule.name}' has no fire time between {iso(start)} and "
            f"{iso(min(end, now))}"
        )
    return store.create_backfill(
        new_run_id(now),
        schedule.name,
        to_utc(start),
        to_utc(end),
        [to_utc(t) for t in times],
        max_concurrent=max_concurrent,
        rerun=rerun,
        requested_by=requested_by,
        owner=owner,
    )


def get_backfill(store: Store, reference: str) -> Backfill:
    """A backfill by any unique prefix of its id; NotFound, AmbiguousId."""
    return store.get_backfill(store.resolve_backfill_id(reference))


def find_schedule(definitions: ServedDefinitions, name: str) -> ScheduleDef:
    schedule = definitions.schedules.get(name)
    if schedule is None:
        known = ", ".join(sorted(definitions.schedules)) or "none"
        raise NotFound(f"no schedule '{name}' (schedules: {known})")
    return schedule


def schedule_registered_at(store: Store, name: str) -> datetime | None:
    state = store.schedule_states().get(name)
    return state.registered_at if state is not None else None


# -- running one ------------------------------------------------------------------------------------
