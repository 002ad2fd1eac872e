"""The backfills a leading daemon runs: those asked of it, and at start those left ``running`` by
a process that is gone (the daemon before a restart, a killed foreground ``pipesched
backfill``), which carry on where they stopped. A shutdown leaves its backfills ``running`` for
the next start; a cancel ends them ``canceled``."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog

from scheduler.core.errors import PipeschedError
from scheduler.core.loopguard import run_blocking
from scheduler.core.procinfo import current_owner, is_alive
from scheduler.dispatch.dispatcher import ShuttingDown
from scheduler.services.backfill import BackfillRunner
from scheduler.services.backfill_plan import (
    create_backfill,
    find_schedule,
    get_backfill,
    parse_bound,
    plan_backfill,
)

if TYPE_CHECKING:
    from scheduler.core.clock import Clock
    from scheduler.definitions.pipeline import Pipeline
    from scheduler.definitions.schedules import ScheduleDef
    from scheduler.dispatch.dispatcher import Dispatcher
    from scheduler.fires.served import ServedDefinitions
    from scheduler.store import Store
    from scheduler.store.backfills import Backfill

log = structlog.get_logger("scheduler.daemon.backfills")


class _Served:
    """The definitions served now, whatever reload swapped in since a runner started."""

    def __init__(self, current: Callable[[], ServedDefinitions | None]) -> None:
        self._current = current

    def _now(self) -> ServedDefinitions:
        served = self._current()
        if served is None:
            raise PipeschedError("the daemon is not serving yet")
        return served

    @property
    def schedules(self) -> Mapping[str, ScheduleDef]:
        return self._now().schedules

    def pipeline_for(self, schedule: ScheduleDef) -> Pipeline:
        return self._now().pipeline_for(schedule)


class DaemonBackfills:
    """Owns the runners of the backfills this daemon runs; every coroutine runs on its loop.
    ``definitions`` gives the set served now (it changes on reload)."""

    def __init__(
        self,
        store: Store,
        dispatcher: Dispatcher,
        clock: Clock,
        definitions: Callable[[], ServedDefinitions | None],
    ) -> None:
        self.store, self.dispatcher, self.clock = store, dispatcher, clock
        self.served = _Served(definitions)
        self.runners: dict[str, tuple[BackfillRunner, asyncio.Task[Backfill | None]]] = {}

    async def resume(self) -> int:
        """Carry on with every running backfill whose owner is gone; how many."""
        host = socket.gethostname()
        me = current_owner()
        resumed = 0
        for backfill in await run_blocking(
            self.store.list_backfills, statuses=["running"], limit=0
        ):
            owner = backfill.owner
            if owner is not None and owner.host == host and is_alive(owner.pid, owner.start_ticks):
                continue  # a foreground `pipesched backfill` still at it
            await run_blocking(self.store.take_backfill, backfill.id, me)
            self._start(backfill)
            resumed += 1
            log.info("backfill_resumed", backfill=backfill.id, done=backfill.done)
        return resumed

    async def create(
        self,
        schedule_name: str,
        start: str,
        end: str,
        *,
        max_concurrent: int = 1,
        rerun: bool = False,
        dry_run: bool = False,
        requested_by: str | None = None,
    ) -> dict[str, Any]:
        """A new backfill, started at once: its ``backfills --json`` object; with ``dry_run``
        the plan instead (nothing written)."""
        schedule = find_schedule(self.served, schedule_name)
        first = parse_bound(start, schedule.zone, end=False)
        last = parse_bound(end, schedule.zone, end=True)
        now: datetime = self.clock.now()
        if dry_run:
            plan = await run_blocking(
                plan_backfill, self.store, schedule, first, last, rerun=rerun, now=now
            )
            return plan.to_json()
        backfill = await run_blocking(
            create_backfill,
            self.store,
            schedule,
            first,
            last,
            max_concurrent=max_concurrent,
            rerun=rerun,
            requested_by=requested_by,
            owner=current_owner(),
            now=now,
        )
        log.info(
            "backfill_created",
            backfill=backfill.id,
            schedule=schedule.name,
            times=backfill.total,
            max_concurrent=max_concurrent,
            rerun=rerun,
        )
        self._start(backfill)
        return backfill.to_json()

    async def cancel(self, reference: str) -> dict[str, Any]:
        """Cancel a backfill (any unique prefix of its id): its ``backfills --json`` object once
        its runs have ended. One already ended is left as it is."""
        backfill = await run_blocking(get_backfill, self.store, reference)
        held = self.runners.get(backfill.id)
        if held is not None:
            runner, task = held
            runner.cancel("canceled by user")
            await asyncio.shield(task)
        elif not backfill.finished:
            await run_blocking(
                self.store.finish_backfill, backfill.id, "canceled", "canceled by user"
            )
        final = await run_blocking(self.store.get_backfill, backfill.id)
        return final.to_json()

    def _start(self, backfill: Backfill) -> None:
        runner = BackfillRunner(self.store, self.dispatcher, self.served, backfill, self.clock)
        task = asyncio.ensure_future(self._run(runner))
        self.runners[backfill.id] = (runner, task)

    async def _run(self, runner: BackfillRunner) -> Backfill | None:
        try:
            return await runner.run()
        except ShuttingDown:
            return None  # stays running: the next start carries on
        except Exception:
            log.exception("backfill_crashed", backfill=runner.backfill.id)
            return None
        finally:
            self.runners.pop(runner.backfill.id, None)

    async def stop(self) -> None:
        """At shutdown: stop every runner; their backfills stay ``running`` for the next start
        (their runs are the dispatcher's to drain)."""
        tasks = [task for _, task in self.runners.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
