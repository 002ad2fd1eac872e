"""Every run request (schedule, CLI trigger, file drops and REST) passes here: the schedule's
``concurrency`` policy, the global ``max_concurrent_runs``, and the run recorded as ``queued``
before it starts. It knows nothing of triggers; the executor knows nothing of it.

Policies, when the schedule's previous run is still running (or waiting):
``allow`` starts another; ``forbid`` records the fire ``skipped: overlap``; ``replace`` cancels
the old run (``canceled: replaced``) and starts the new one once the old has stopped; ``queue``
records the new run ``queued`` and starts it right after, in order.

The dispatcher lives on the daemon's event loop and never blocks it: a request's sources are
hashed in a worker thread and its run recorded on the store's thread. Requests of one schedule
are taken one at a time, in the order they came, so the policy always sees the runs recorded
before; once taken, a request is recorded and queued even if its caller is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from scheduler.core.clock import SYSTEM_CLOCK, Clock
from scheduler.core.errors import PipeschedError
from scheduler.core.loopguard import run_parallel, submit_blocking
from scheduler.core.procinfo import current_owner
from scheduler.core.runtimes import RunTimes
from scheduler.definitions.config import Config
from scheduler.definitions.pipeline import Pipeline
from scheduler.dispatch.freespace import free_space_problem
from scheduler.dispatch.submit import prepare_run, record_run
from scheduler.executor import ExecutionOptions, RunExecutor
from scheduler.store.patience import patiently
from scheduler.store.protocols import DispatchStore
from scheduler.store.records import FileKey, RunRecord

log = structlog.get_logger("scheduler.dispatch.dispatcher")


class ShuttingDown(PipeschedError):
    """The daemon is shutting down and starts no new run."""


@dataclass(frozen=True)
class RunRequest:
    """One request for a run, from any door: what to run, with what, and on whose behalf."""

    pipeline: Pipeline
    parameters: Mapping[str, Any] = field(default_factory=dict)
    trigger: str = "manual"
    schedule: str | None = None
    experiment: str | None = None
    concurrency: str = "allow"
    fire: tuple[str, datetime] | None = None  # the fire record this request settles
    version: str | None = None  # the published label it was loaded from; None: the working copy
    run_id: str | None = None  # pre-generated (a file-drop batch folder is named after it)
    file_fires: list[tuple[str, str, int, int]] | None = None  # ledger rows it settles
    regenerate_outputs: bool = False  # run every step; reuse nothing (SDK submit)
    # What the run stands for. None: a ``fire``'s nominal time with no interval, or else the
    # moment the run is recorded. Fire handlers and backfills compute the interval and set it.
    times: RunTimes | None = None


def fire_times(fire: tuple[str, datetime] | None) -> RunTimes | None:
    """A fire's nominal time, for a request that carries no times of its own."""
    return RunTimes(nominal_time=fire[1]) if fire is not None else None


@dataclass(frozen=True)
class Outcome:
    outcome: str  # started | queued | skipped
    run: RunRecord | None = None
    reason: str | None = None


@dataclass
class _Entry:
    run: RunRecord
    pipeline: Pipeline
    schedule: str | None
    exclusive: bool  # waits for the schedule's previous run (every policy but allow)
    executor: RunExecutor | None = None
    task: asyncio.Task[str] | None = None
    regenerate_outputs: bool = False
    fire: tuple[str, datetime] | None = None  # the fire record its run settled
    file_fires: list[tuple[str, str, int, int]] | None = None  # the ledger rows it settled


class Dispatcher:
    """Owns the runs in flight and the queue of waiting ones; every method runs on the loop."""

    def __init__(
        self,
        config: Config,
        store: DispatchStore,
        *,
        clock: Clock = SYSTEM_CLOCK,
        kill_grace: float = 5.0,
    ) -> None:
        self.config, self.store, self.clock = config, store, clock
        self.kill_grace = kill_grace
        self.active: dict[str, _Entry] = {}
        self.waiting: deque[_Entry] = deque()
        # Set whenever a run ends; whoever reports progress clears it and waits again.
        self.run_ended = asyncio.Event()
        self._accepting = True
        self._turns: dict[str | None, asyncio.Lock] = {}  # one request per schedule at a time
        self._taking: set[asyncio.Task[Outcome]] = set()  # requests taken, not yet queued
        self._closing: set[asyncio.Future[None]] = set()  # canceled waiting runs being closed

    # ---- requests ------------------------------------------------------------------------

    async def submit(self, request: RunRequest) -> Outcome:
        """Apply the policy, record the run (or the skip), start it when its turn comes."""
        if not self._accepting:
            raise ShuttingDown()
        task = asyncio.ensure_future(self._take(request))
        self._taking.add(task)
        task.add_done_callback(self._taken)
        # Shielded: a caller that goes away must not leave a recorded run out of the queue.
        return await asyncio.shield(task)

    def _taken(self, task: asyncio.Task[Outcome]) -> None:
        self._taking.discard(task)
        if not task.cancelled():
            task.exception()  # the caller gets it; retrieved here too in case it went away

    async def _take(self, request: RunRequest) -> Outcome:
        name = request.schedule
        async with self._turns.setdefault(name, asyncio.Lock()):
            if not self._accepting:
                raise ShuttingDown()
            busy = self._entries_of(name) if name else []
            if busy and request.concurrency == "forbid":
                if request.fire:
                    await patiently(
                        self.store.update_fire, *request.fire, outcome="skipped", reason="overlap"
                    )
                log.info("fire_skipped", schedule=name, reason="overlap")
                return Outcome("skipped", reason="overlap")
            if busy and request.concurrency == "replace":
                await self._replace(busy)
            prepared = await run_parallel(
                prepare_run,
                self.config,
                request.pipeline,
                request.parameters,
                request.experiment,
            )
            run = await patiently(
                record_run,
                self.store,
                prepared,
                trigger=request.trigger,
                schedule=name,
                owner=current_owner(),
                fire=request.fire,
                run_id=request.run_id,
                file_fires=request.file_fires,
                version=request.version,
                times=request.times or fire_times(request.fire),
            )
            log.info("run_queued", run_id=run.id, pipeline=run.pipeline, schedule=name)
            entry = _Entry(
                run,
                request.pipeline,
                name,
                exclusive=request.concurrency != "allow",
                regenerate_outputs=request.regenerate_outputs,
                fire=request.fire,
                file_fires=request.file_fires,
            )
            self.waiting.append(entry)
            self._pump()
            return Outcome("started" if entry.task else "queued", run=run)

    async def resume(self, run: RunRecord, pipeline: Pipeline, concurrency: str = "queue") -> None:
        """Take over a run another (dead) daemon had recorded as queued: same id."""
        await patiently(self.store.mark_recovered, run.id)
        self.waiting.append(_Entry(run, pipeline, run.schedule, exclusive=concurrency != "allow"))
        self._pump()

    async def _replace(self, busy: list[_Entry]) -> None:
        for entry in busy:
            if entry.task is None:
                self.waiting.remove(entry)
                await patiently(close_unstarted, self.store, entry.run.id, "replaced")
            elif entry.executor is not None:
                entry.executor.cancel("replaced")
        await asyncio.gather(*(e.task for e in busy if e.task), return_exceptions=True)

    # ---- starting ------------------------------------------------------------------------

    def _entries_of(self, schedule: str) -> list[_Entry]:
        return [e for e in [*self.active.values(), *self.waiting] if e.schedule == schedule]

    def _pump(self) -> None:
        """Start waiting runs, oldest first, while slots are free and their turn has come."""
        if not self._accepting:
            return
        for entry in list(self.waiting):
            if len(self.active) >= self.config.max_concurrent_runs:
                return
            if (
                entry.exclusive
                and entry.schedule
                and any(e.schedule == entry.schedule for e in self.active.values())
            ):
                continue
            if (
                entry.exclusive
                and entry.schedule
                and any(
                    e.schedule == entry.schedule
                    for e in self.waiting
                    if e is not entry and self.waiting.index(e) < self.waiting.index(entry)
                )
            ):
                continue  # an older run of this schedule goes first
            self.waiting.remove(entry)
            self._start(entry)

    def _start(self, entry: _Entry) -> None:
        entry.executor = RunExecutor(
            config=self.config,
            store=self.store,
            pipeline=entry.pipeline,
            run=entry.run,
            options=ExecutionOptions(
                kill_grace=self.kill_grace, regenerate_outputs=entry.regenerate_outputs
            ),
            clock=self.clock,
        )
        self.active[entry.run.id] = entry
        entry.task = asyncio.ensure_future(self._execute(entry, entry.executor))

    async def _execute(self, entry: _Entry, executor: RunExecutor) -> str:
        status = "failed"
        try:
            problem = await run_parallel(free_space_problem, self.config)
            if problem is not None:
                await self._refuse(entry, problem)
                return status
            status = await executor.execute()
        except Exception:
            log.exception("run_crashed", run_id=entry.run.id)
            await patiently(self.store.finish_run, entry.run.id, "failed", "internal error")
        finally:
            self.active.pop(entry.run.id, None)
            run = entry.run
            log.info("run_done", run_id=run.id, status=status, schedule=run.schedule)
            self.run_ended.set()
            self._pump()
        return status

    async def _refuse(self, entry: _Entry, reason: str) -> None:
        """The run never starts (too little free space): it ends ``failed`` with ``reason``, its
        steps ``skipped``, and its fire record (or its files' ledger rows) ``skipped`` with
        ``reason``."""
        log.warning("run_not_started", run_id=entry.run.id, schedule=entry.schedule, reason=reason)
        await patiently(close_unstarted, self.store, entry.run.id, reason, status="failed")
        if entry.fire is not None:
            await patiently(
                self.store.update_fire,
                *entry.fire,
                outcome="skipped",
                reason=reason,
                run_id=entry.run.id,
            )
        by_schedule: dict[str, list[FileKey]] = {}
        for schedule, path, size, mtime_ns in entry.file_fires or ():
            by_schedule.setdefault(schedule, []).append(FileKey(path, size, mtime_ns))
        for schedule, keys in by_schedule.items():
            await patiently(self.store.mark_files, schedule, keys, outcome="skipped", reason=reason)

    # ---- cancel and shutdown -------------------------------------------------------------

    def cancel(self, run_id: str, reason: str = "canceled by user") -> bool:
        """True when this dispatcher owned the run (running or waiting). A waiting run is closed
        on the store's thread, queued now: a store call handed over after this sees it closed."""
        entry = self.active.get(run_id)
        if entry is not None and entry.executor is not None:
            entry.executor.cancel(reason)
            return True
        for waiting in list(self.waiting):
            if waiting.run.id == run_id:
                self.waiting.remove(waiting)
                closing = submit_blocking(close_unstarted, self.store, run_id, reason)
                self._closing.add(closing)
                closing.add_done_callback(self._closed)
                return True
        return False

    async def cancel_and_wait(self, run_id: str, timeout: float = 30) -> bool:
        """``cancel``, then wait (at most ``timeout`` seconds) until a running run has ended and
        recorded its end; True when this dispatcher owned the run."""
        entry = self.active.get(run_id)
        if not self.cancel(run_id):
            return False
        if entry is not None and entry.task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(entry.task), timeout=timeout)
        return True

    def _closed(self, closing: asyncio.Future[None]) -> None:
        self._closing.discard(closing)
        if not closing.cancelled() and closing.exception() is not None:
            log.error("run_close_failed", error=str(closing.exception()))

    async def shutdown(self, grace: float) -> None:
        """Start nothing new; running steps get ``grace`` seconds, then their groups are stopped
        (SIGTERM, SIGKILL ``kill_grace`` later) and their runs end ``canceled: shutdown``.
        Waiting runs stay ``queued`` in the store for the next start."""
        self._accepting = False
        # Requests already taken finish recording (their runs stay queued for the next start).
        await asyncio.gather(*self._taking, *self._closing, return_exceptions=True)
        entries = list(self.active.values())
        for entry in entries:
            assert entry.executor is not None
            entry.executor.drain("shutdown")
        tasks = [e.task for e in entries if e.task is not None]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for entry in entries:
            if entry.task in pending and entry.executor is not None:
                entry.executor.cancel("shutdown")
        await asyncio.gather(*tasks, return_exceptions=True)

    def runs_in_flight(self) -> int:
        return len(self.active)


def close_unstarted(
    store: DispatchStore, run_id: str, reason: str, *, status: str = "canceled"
) -> None:
    """End a run that never started ``status`` (``canceled``, or ``failed``: refused) with
    ``reason``, its steps first (``canceled``, or ``skipped`` for a refused run)."""
    step_status = "canceled" if status == "canceled" else "skipped"
    for step in store.get_run_detail(run_id).latest_attempts():
        store.mark_step(run_id, step, status=step_status, reason=reason)
    store.finish_run(run_id, status, reason)
