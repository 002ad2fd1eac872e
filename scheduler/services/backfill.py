"""Backfill: run each nominal time of a time schedule in a range once, in order, at most N at
once, through the dispatcher (trigger ``backfill:<id>``), as a record a restart carries on.

What a time becomes is decided when its turn comes, not when the backfill is made: a time that
already has a fire record (a live fire, an earlier backfill) is skipped unless ``rerun``. A time
is claimed through the schedule's fire records, exactly as a live fire claims it, so a live fire
and a backfill never both run one time. Its run id is written to the backfill before the run is
recorded: after a crash the run it made is found (recovery has requeued or closed it), or made
with that same id, never twice.

Overlap with live runs follows the schedule's ``concurrency``: under ``allow`` up to
``max_concurrent`` backfill runs overlap each other and live ones; under any other policy a
backfill run waits its turn behind the schedule's other runs (it is never skipped, and so never
more than one runs at once), while a live fire meets the backfill's run as it would any run of
its schedule (``forbid`` skips the live fire, ``replace`` cancels the backfill's run).

Cancel stops starting new times, cancels the backfill's runs still queued or running (``canceled
by user``) and leaves the times not begun without a fire record, free for a later backfill.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import structlog

from scheduler.compute.reaper import become_subreaper
from scheduler.core.clock import SYSTEM_CLOCK, Clock
from scheduler.core.errors import NotFound, PipeschedError
from scheduler.core.ids import new_run_id
from scheduler.core.loopguard import run_blocking
from scheduler.dispatch.dispatcher import Dispatcher, RunRequest, ShuttingDown
from scheduler.executor.foreground import CANCEL_SIGNALS
from scheduler.services.backfill_plan import (
    TRIGGER_PREFIX,
    find_schedule,
    schedule_registered_at,
    skip_reason,
)
from scheduler.store.backfills import Backfill, BackfillTime
from scheduler.store.patience import patiently
from scheduler.store.records import FINISHED_RUN_STATUSES
from scheduler.triggers.time import schedule_run_times

if TYPE_CHECKING:
    from scheduler.definitions.config import Config
    from scheduler.definitions.schedules import ScheduleDef
    from scheduler.fires.served import ServedDefinitions
    from scheduler.store import Store

log = structlog.get_logger("scheduler.services.backfill")


class BackfillRunner:
    """Runs one recorded backfill on the event loop through ``dispatcher``; every store call
    goes to the store's thread. ``on_progress`` is called after each time settles."""

    def __init__(
        self,
        store: Store,
        dispatcher: Dispatcher,
        definitions: ServedDefinitions,
        backfill: Backfill,
        clock: Clock,
        *,
        on_progress: Callable[[Backfill], None] | None = None,
    ) -> None:
        self.store, self.dispatcher, self.definitions = store, dispatcher, definitions
        self.backfill, self.clock = backfill, clock
        self.on_progress = on_progress
        self.trigger = f"{TRIGGER_PREFIX}{backfill.id}"
        self._canceled: str | None = None
        self._runs: set[str] = set()  # recorded and not yet ended
        self._failed = 0
        self._wakeup = asyncio.Event()
        self.registered_at: datetime | None = None

    def cancel(self, reason: str = "canceled by user") -> None:
        """Start no new time; cancel the runs this backfill has queued or running."""
        if self._canceled is None:
            self._canceled = reason
        for run_id in list(self._runs):
            self.dispatcher.cancel(run_id, reason)
        self._wakeup.set()

    async def run(self) -> Backfill:
        """Run every time not yet settled; the backfill's end as recorded. A shutting-down
        dispatcher leaves it ``running`` for the next start (ShuttingDown propagates)."""
        backfill = self.backfill
        try:
            schedule = find_schedule(self.definitions, backfill.schedule)
        except NotFound as exc:
            return await self._finish("failed", str(exc))
        times = await run_blocking(self.store.backfill_times, backfill.id)
        self.registered_at = await run_blocking(schedule_registered_at, self.store, schedule.name)
        slots = asyncio.Semaphore(backfill.max_concurrent)
        waiting: set[asyncio.Task[None]] = set()
        try:
            for item in times:
                if item.outcome in ("skipped", "completed", "failed", "canceled"):
                    continue
                await slots.acquire()
                if self._canceled is not None:
                    slots.release()
                    break
                run_id = await self._start(schedule, item)
                if run_id is None:
                    slots.release()
                    await self._progress()
                    continue
                task = asyncio.ensure_future(self._settle(item.nominal_time, run_id, slots))
                waiting.add(task)
                task.add_done_callback(waiting.discard)
            await asyncio.gather(*waiting)
        except ShuttingDown:
            await asyncio.gather(*waiting, return_exceptions=True)
            raise
        except PipeschedError as exc:
            self.cancel(f"backfill failed: {exc}")
            await asyncio.gather(*waiting, return_exceptions=True)
            return await self._finish("failed", str(exc))
        if self._canceled is not None:
            return await self._finish("canceled", self._canceled)
        if self._failed:
            return await self._finish("failed", f"{self._failed} run(s) failed")
        return await self._finish("completed", None)

    async def _start(self, schedule: ScheduleDef, item: BackfillTime) -> str | None:
        """Record the run of one time (or find it, made before a restart); None when skipped."""
        backfill, nominal, name = self.backfill, item.nominal_time, schedule.name
        run_id = item.run_id
        if run_id is not None:
            status = await run_blocking(self.store.recorded_run_status, run_id)
            if status is not None:  # recorded before a restart: recovery requeued or closed it
                await self._settled_fire(name, nominal, run_id)
                self._runs.add(run_id)
                return run_id
        else:
            run_id = new_run_id(self.clock.now())
            await patiently(
                self.store.set_backfill_time,
                backfill.id,
                nominal,
                outcome="pending",
                run_id=run_id,
            )
        claimed = await patiently(self.store.claim_backfill_fire, name, nominal, self.trigger)
        if not claimed:
            holders = await run_blocking(self.store.fire_holders, name, [nominal])
            holder = holders.get(nominal)
            ours = holder is not None and holder.reason == self.trigger and holder.run_id is None
            if not ours and not backfill.rerun:
                await self._set(nominal, "skipped", skip_reason(holder))
                return None
        # The run settles no fire record itself (that would move the schedule's last fire,
        # where the daemon's catch-up starts): the backfill settles its own below.
        request = RunRequest(
            pipeline=self.definitions.pipeline_for(schedule),
            parameters=dict(schedule.parameters),
            trigger=self.trigger,
            schedule=name,
            experiment=schedule.experiment,
            concurrency="allow" if schedule.concurrency == "allow" else "queue",
            version=schedule.pipeline_version,
            run_id=run_id,
            times=schedule_run_times(schedule, nominal, self.registered_at),
        )
        outcome = await self.dispatcher.submit(request)
        if outcome.run is None:
            await self._set(nominal, "skipped", outcome.reason)
            return None
        self._runs.add(run_id)
        await self._settled_fire(name, nominal, run_id)
        await self._set(nominal, "started", None, run_id)
        if self._canceled is not None:
            self.dispatcher.cancel(run_id, self._canceled)
        return run_id

    async def _settled_fire(self, schedule: str, nominal: datetime, run_id: str) -> None:
        await patiently(self.store.settle_backfill_fire, schedule, nominal, self.trigger, run_id)

    async def _settle(self, nominal: datetime, run_id: str, slots: asyncio.Semaphore) -> None:
        try:
            status = await self._wait_for_run(run_id)
            if status == "failed":
                self._failed += 1
            reason = None
            if status != "completed":
                run = await run_blocking(self.store.get_run, run_id)
                reason = run.status_reason
            await self._set(nominal, status, reason, run_id)
        finally:
            self._runs.discard(run_id)
            slots.release()
        await self._progress()

    async def _wait_for_run(self, run_id: str) -> str:
        """Until the run has ended: its task while it runs here, else its status in the store
        (a run recovery requeued, or one waiting for a slot)."""
        while True:
            entry = self.dispatcher.active.get(run_id)
            if entry is not None and entry.task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(entry.task)
            elif any(waiting.run.id == run_id for waiting in self.dispatcher.waiting):
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), 0.05)
                continue
            status = await run_blocking(self.store.recorded_run_status, run_id)
            if status is None or status in FINISHED_RUN_STATUSES:
                return status or "failed"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), 0.2)

    async def _set(
        self, nominal: datetime, outcome: str, reason: str | None, run_id: str | None = None
    ) -> None:
        await patiently(
            self.store.set_backfill_time,
            self.backfill.id,
            nominal,
            outcome=outcome,
            reason=reason,
            run_id=run_id,
        )

    async def _progress(self) -> None:
        if self.on_progress is None:
            return
        self.backfill = await run_blocking(self.store.get_backfill, self.backfill.id)
        self.on_progress(self.backfill)

    async def _finish(self, status: str, reason: str | None) -> Backfill:
        self.backfill = await patiently(
            self.store.finish_backfill, self.backfill.id, status, reason
        )
        log.info(
            "backfill_finished",
            backfill=self.backfill.id,
            schedule=self.backfill.schedule,
            status=self.backfill.status,
            done=self.backfill.done,
            total=self.backfill.total,
        )
        if self.on_progress is not None:
            self.on_progress(self.backfill)
        return self.backfill


# -- in the foreground, without a daemon ------------------------------------------------------------


def run_in_foreground(
    config: Config,
    store: Store,
    definitions: ServedDefinitions,
    backfill: Backfill,
    *,
    on_progress: Callable[[Backfill], None] | None = None,
) -> Backfill:
    """Run a recorded backfill in this process (its owner) through a dispatcher of its own, as
    ``pipesched run`` runs one pipeline: SIGINT, SIGTERM and SIGHUP cancel it (its runs too)
    and record it ``canceled``. Step processes that leave a session still come back to it."""
    become_subreaper()
    return asyncio.run(_foreground(config, store, definitions, backfill, on_progress))


async def _foreground(
    config: Config,
    store: Store,
    definitions: ServedDefinitions,
    backfill: Backfill,
    on_progress: Callable[[Backfill], None] | None,
) -> Backfill:
    dispatcher = Dispatcher(config, store)
    runner = BackfillRunner(
        store, dispatcher, definitions, backfill, SYSTEM_CLOCK, on_progress=on_progress
    )
    loop = asyncio.get_running_loop()
    for signum, reason in CANCEL_SIGNALS.items():
        loop.add_signal_handler(signum, runner.cancel, reason)
    try:
        return await runner.run()
    finally:
        for signum in CANCEL_SIGNALS:
            loop.remove_signal_handler(signum)
        await dispatcher.shutdown(0)
