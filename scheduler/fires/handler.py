"""From a due nominal time to a run request: claim the fire record first (unique per schedule and
nominal time: a crash, a reload or a second daemon cannot make a second run), then apply the
catch-up rule to late times, then hand the request to the dispatcher.

A time is *late* when it is reported more than ``LATE_AFTER`` seconds after its nominal time:
the daemon was down, suspended (SIGSTOP), or the wall clock jumped. Late times follow the
schedule's ``catchup`` rule, decided once when they are seen.

Missed fire times are recorded one row each, up to ``MAX_MISSED_RECORDS`` per catch-up (the
newest); beyond that a single warning gives the count (a minutely cron down for a year would
otherwise write half a million rows before READY).

The handler runs on the daemon's event loop and never blocks it: every store call is handed to
the store's thread and awaited before the next step, so the claim is committed before any run
is asked for.

While the store cannot be written (locked, full, away), a due time is not claimed: it is left
to the catch-up that the daemon runs once the store is back (``catch_up``, from the last
recorded nominal time), so the catch-up rule decides what runs, never the length of the outage.
What follows a claim (the run's record, a skip, a missed time) waits out the outage in memory
(``store.patience``).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from scheduler.core.clock import Clock
from scheduler.core.crashpoints import crashpoint
from scheduler.core.loopguard import run_blocking
from scheduler.core.runtimes import RunTimes
from scheduler.definitions.schedules import ScheduleDef
from scheduler.dispatch.dispatcher import Outcome, RunRequest, ShuttingDown
from scheduler.fires.catchup import decide
from scheduler.fires.served import ServedDefinitions
from scheduler.store.patience import is_unavailable, patiently
from scheduler.store.protocols import FireStore
from scheduler.store.records import ScheduleState
from scheduler.triggers.time import needs_registration, schedule_run_times, time_trigger

log = structlog.get_logger("scheduler.fires.handler")

LATE_AFTER = 60.0
MAX_MISSED_RECORDS = 10_000
CATCHUP_REASON = "catch-up rule"


class RunSubmitter(Protocol):
    """The dispatcher's door, as the handler uses it."""

    def submit(self, request: RunRequest) -> Awaitable[Outcome]: ...


class FireHandler:
    """Turns due times into claimed fire records and run requests. ``definitions`` is the set
    the daemon serves; the daemon replaces it on reload."""

    def __init__(
        self,
        store: FireStore,
        dispatcher: RunSubmitter,
        clock: Clock,
        definitions: ServedDefinitions,
    ) -> None:
        self.store, self.dispatcher, self.clock = store, dispatcher, clock
        self.definitions = definitions
        self._tasks: set[asyncio.Task[Any]] = set()
        self._in_flight: set[tuple[str, datetime]] = set()  # claimed by us, being fired now
        # The oldest due time of each schedule left unclaimed by a store outage: the catch-up
        # after it starts there, below any time claimed meanwhile.
        self._deferred: dict[str, datetime] = {}

    # ---- due times from the timer ---------------------------------------------------------

    def on_due(self, name: str, times: list[datetime]) -> None:
        """Called by the timer in the event loop; the work goes to a task."""
        task = asyncio.ensure_future(self.handle_due(name, times))
        self._tasks.add(task)
        task.add_done_callback(self._handled)

    def _handled(self, task: asyncio.Task[Any]) -> None:
        """Log what a due time's task did not expect, never leave it to asyncio's "Task
        exception was never retrieved"."""
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("fire_task_failed", error=f"{type(exc).__name__}: {exc}")

    async def handle_due(self, name: str, times: list[datetime]) -> None:
        schedule = self.definitions.schedules.get(name)
        if schedule is None:
            return
        if (reason := self.store.health.unwritable) is not None:
            self._defer(name, times, reason)
            return
        now = self.clock.now()
        late = [t for t in times if (now - t).total_seconds() > LATE_AFTER]
        on_time = [t for t in times if t not in late]
        to_run = list(on_time)
        if late:
            decision = decide(late, schedule.catchup, schedule.catchup_limit)
            await self._record_missed(schedule, decision.missed, len(decision.missed))
            to_run = decision.run + on_time
        await self._fire_in_order(schedule, to_run, catching_up=bool(late))

    async def _fire_in_order(
        self, schedule: ScheduleDef, times: list[datetime], *, catching_up: bool
    ) -> None:
        # Several catch-up runs of one schedule run one after another, never skip each other.
        policy = (
            "queue" if catching_up and len(times) > 1 and schedule.concurrency != "allow" else None
        )
        for nominal in times:
            await self.fire(schedule, nominal, concurrency=policy)

    # ---- one fire ---------------------------------------------------------------------------

    async def fire(
        self,
        schedule: ScheduleDef,
        nominal: datetime,
        *,
        concurrency: str | None = None,
        recovered: bool = False,
        claimed: bool = False,
    ) -> Outcome | None:
        """Claim (unless already claimed by us), then dispatch. None when it had been handled."""
        name = schedule.name
        if (name, nominal) in self._in_flight:
            return None
        self._in_flight.add((name, nominal))
        try:
            return await self._claim_and_dispatch(
                schedule, nominal, concurrency=concurrency, recovered=recovered, claimed=claimed
            )
        finally:
            self._in_flight.discard((name, nominal))

    async def _claim_and_dispatch(
        self,
        schedule: ScheduleDef,
        nominal: datetime,
        *,
        concurrency: str | None,
        recovered: bool,
        claimed: bool,
    ) -> Outcome | None:
        name = schedule.name
        if not claimed:
            try:
                fresh = await run_blocking(self.store.claim_fire, name, nominal)
            except Exception as exc:
                if not is_unavailable(exc):
                    raise
                self._defer(name, [nominal], str(self.store.health.unwritable or exc))
                return None
            if not fresh:
                log.info("fire_already_handled", schedule=name, nominal_time=nominal.isoformat())
                return None
        crashpoint("fire_claimed")
        if schedule.jitter:
            await asyncio.sleep(random.uniform(0, schedule.jitter))
        times = await self._run_times(schedule, nominal)
        request = RunRequest(
            pipeline=self.definitions.pipeline_for(schedule),
            parameters=dict(schedule.parameters),
            trigger=f"schedule:{name}",
            schedule=name,
            experiment=schedule.experiment,
            concurrency=concurrency or schedule.concurrency,
            fire=(name, nominal),
            version=schedule.pipeline_version,
            times=times,
        )
        try:
            outcome = await self.dispatcher.submit(request)
        except ShuttingDown:
            return None  # stays claimed: resumed at the next start under the catch-up rule
        except Exception as exc:  # a run that cannot even be recorded must not kill the timer
            log.exception("fire_failed", schedule=name)
            await patiently(
                self.store.update_fire, name, nominal, outcome="skipped", reason=f"error: {exc}"
            )
            return None
        if recovered and outcome.run is not None:
            await patiently(self.store.mark_recovered, outcome.run.id)
        log.info(
            "schedule_fired",
            schedule=name,
            nominal_time=nominal.isoformat(),
            outcome=outcome.outcome,
            run_id=outcome.run.id if outcome.run else None,
        )
        return outcome

    async def _run_times(self, schedule: ScheduleDef, nominal: datetime) -> RunTimes:
        """What the fire's run stands for: ``nominal`` and the interval since the schedule's
        previous fire time. A recurrence counted from its registration reads that from the
        store; if it cannot, the run still has its nominal time."""
        registered_at = None
        if needs_registration(schedule):
            try:
                states = await run_blocking(self.store.schedule_states)
            except Exception as exc:
                log.warning("registration_unread", schedule=schedule.name, error=str(exc))
            else:
                state = states.get(schedule.name)
                registered_at = state.registered_at if state is not None else None
        return schedule_run_times(schedule, nominal, registered_at)

    def _defer(self, name: str, times: list[datetime], reason: str) -> None:
        oldest = min(times, default=None)
        if oldest is not None and (name not in self._deferred or oldest < self._deferred[name]):
            self._deferred[name] = oldest
        for nominal in times:
            log.warning(
                "fire_deferred",
                schedule=name,
                nominal_time=nominal.isoformat(),
                reason=reason,
                until="the store can be written again",
            )

    # ---- start-up, and after a store outage --------------------------------------------------

    async def resume_claimed(self) -> int:
        """Fires claimed but never dispatched (by a daemon that died, or whose dispatch met a
        store outage and was not retried): exactly one run each (marked recovered), if the
        catch-up rule still wants it. Fires this handler is dispatching now are left alone."""
        resumed = 0
        for record in await patiently(self.store.fires_with_outcome, "claimed"):
            schedule = self.definitions.schedules.get(record.schedule)
            if schedule is None or record.nominal_time is None:
                continue
            if (record.schedule, record.nominal_time) in self._in_flight:
                continue
            if schedule.catchup == "none":
                await patiently(
                    self.store.update_fire,
                    record.schedule,
                    record.nominal_time,
                    outcome="missed",
                    reason=CATCHUP_REASON,
                )
                continue
            await self.fire(schedule, record.nominal_time, recovered=True, claimed=True)
            resumed += 1
        return resumed

    async def catch_up(self, schedule: ScheduleDef, state: ScheduleState) -> None:
        """Fire times between the last recorded fire (or the first registration: a new schedule
        never catches up on times before it) and now, by the catch-up rule. After a store
        outage it starts at the oldest time the outage left unclaimed, if that is older: times
        recorded since are recorded once (insert-or-ignore) and never fired twice (the claim)."""
        since = state.last_fire_time or state.registered_at
        deferred = self._deferred.pop(schedule.name, None)
        if deferred is not None and (since is None or deferred <= since):
            since = deferred - timedelta(microseconds=1)  # times_between excludes its start
        if since is None:
            return
        trigger = time_trigger(schedule, state.registered_at)
        fires = trigger.times_between(since, self.clock.now(), MAX_MISSED_RECORDS, newest=True)
        if not fires.times:
            return
        decision = decide(fires.times, schedule.catchup, schedule.catchup_limit)
        unrecorded = fires.count - len(fires.times)
        await self._record_missed(schedule, decision.missed, len(decision.missed) + unrecorded)
        await self._fire_in_order(schedule, decision.run, catching_up=True)

    async def _record_missed(
        self, schedule: ScheduleDef, times: list[datetime], total: int
    ) -> None:
        if not times and not total:
            return
        await patiently(
            self.store.record_fires, schedule.name, times, outcome="missed", reason=CATCHUP_REASON
        )
        log.warning(
            "fires_missed",
            schedule=schedule.name,
            count=total,
            rule=schedule.catchup,
            recorded=len(times),
        )

    async def wait_idle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
