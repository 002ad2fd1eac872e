"""Walks one run's DAG: starts every ready step at once (up to its compute target's
``max_workers``), has ``attempt.py`` run each attempt, skips what a failure cuts off, and closes
the run.

It knows nothing of schedules or triggers: it is handed a recorded run and a pipeline. It runs
on an event loop (the daemon's, or ``pipesched run``'s) and never blocks it: every store call goes
to the store's thread and is awaited before the walk goes on, so a run's writes keep their order
and each is committed before it is reported; fingerprints (which hash sources and list input
folders) are computed in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from scheduler.compute.local import LocalProcess
from scheduler.core.clock import SYSTEM_CLOCK, Clock
from scheduler.core.durations import format_duration
from scheduler.core.loopguard import run_parallel
from scheduler.core.procinfo import current_owner
from scheduler.definitions.config import Config
from scheduler.definitions.graph import build_graph
from scheduler.definitions.pipeline import Pipeline
from scheduler.executor.attempt import AttemptRunner
from scheduler.executor.events import StepEvent
from scheduler.executor.values import StepValues
from scheduler.executor.warmpool import ensure_pool
from scheduler.store.patience import patiently
from scheduler.store.protocols import ExecutorStore
from scheduler.store.records import RunRecord

log = structlog.get_logger("scheduler.executor")

OK_STATUSES = frozenset({"completed", "reused"})


@dataclass(frozen=True)
class ExecutionOptions:
    kill_grace: float = 5.0  # SIGTERM → SIGKILL, for timeouts and cancel
    regenerate_outputs: bool = False


class RunExecutor:
    """Executes one recorded run to its end. ``cancel()`` may be called from a signal handler."""

    def __init__(
        self,
        *,
        config: Config,
        store: ExecutorStore,
        pipeline: Pipeline,
        run: RunRecord,
        options: ExecutionOptions | None = None,
        on_event: Callable[[StepEvent], None] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.config, self.store, self.pipeline, self.run = config, store, pipeline, run
        self.options = options or ExecutionOptions()
        self._on_event = on_event or (lambda event: None)
        self.clock = clock
        self.graph = build_graph(pipeline)
        self.values = StepValues(config, pipeline, run)
        self.status: dict[str, str] = dict.fromkeys(pipeline.steps, "pending")
        self._procs: dict[str, LocalProcess] = {}
        self._cancel_reason: str | None = None
        self._stop_reason: str | None = None  # a step failed and continue_on_step_failure is off
        self._drain_reason: str | None = None  # shutting down: finish running steps, start none
        self._stoppers: set[asyncio.Task[None]] = set()  # held so they are not garbage-collected
        self._stopping = asyncio.Event()  # set by cancel() and drain(): ends a wait between retries
        self._slots = {
            name: asyncio.Semaphore(max(1, target.max_workers))
            for name, target in config.compute.items()
        }
        self.log = log.bind(run_id=run.id, pipeline=run.pipeline)
        self._attempt_runner = AttemptRunner(
            config=config,
            store=store,
            pipeline=pipeline,
            run=run,
            values=self.values,
            clock=clock,
            kill_grace=self.options.kill_grace,
            log=self.log,
            on_started=self._attempt_started,
            on_ended=self._attempt_ended,
            cancel_reason=lambda: self._cancel_reason,
        )

    # ---- the walk -------------------------------------------------------------------------

    async def execute(self) -> str:
        """Run every step that can run; return the run's final status."""
        ensure_pool(self.config, self.pipeline)
        await patiently(self.store.start_run, self.run.id, current_owner())
        self.log.info("run_started")
        running: dict[asyncio.Task[str], str] = {}
        # New steps start only when one finishes, so waiting on the running ones is enough:
        # cancel and drain make them finish sooner, never later.
        while True:
            if not (self._cancel_reason or self._stop_reason or self._drain_reason):
                for step in self._ready_steps():
                    self.status[step] = "running"
                    running[asyncio.ensure_future(self._run_step(step))] = step
            if not running:
                break
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                step = running.pop(task)
                self.status[step] = status = task.result()
                if status == "failed":
                    await self._skip_downstream(step)
                    if not self.pipeline.continue_on_step_failure and not self._stop_reason:
                        self._stop_reason = f"pipeline stopped after step '{step}' failed"
        return await self._close()

    def _ready_steps(self) -> list[str]:
        return [
            step
            for step, status in self.status.items()
            if status == "pending"
            and all(self.status[up] in OK_STATUSES for up in self.graph.upstream(step))
        ]

    async def _skip_downstream(self, failed: str) -> None:
        for step in self.graph.downstream(failed):
            if self.status[step] == "pending":
                await self._finish_pending(step, "skipped", f"upstream step '{failed}' failed")

    async def _finish_pending(self, step: str, status: str, reason: str) -> None:
        self.status[step] = status
        await patiently(self.store.mark_step, self.run.id, step, status=status, reason=reason)
        self._emit(StepEvent(step, status, detail=reason))

    async def _close(self) -> str:
        for step, status in list(self.status.items()):
            if status == "pending":
                if self._cancel_reason is not None or self._drain_reason is not None:
                    why = self._cancel_reason or self._drain_reason or "canceled"
                    await self._finish_pending(step, "canceled", why)
                else:
                    await self._finish_pending(step, "skipped", self._stop_reason or "not started")
        reason: str | None
        if self._cancel_reason is not None:
            final, reason = "canceled", self._cancel_reason
        elif self._drain_reason is not None and "canceled" in self.status.values():
            final, reason = "canceled", self._drain_reason
        elif any(s == "failed" for s in self.status.values()):
            failed = [s for s, st in self.status.items() if st == "failed"]
            final, reason = (
                "failed",
                f"step{'s' if len(failed) > 1 else ''} failed: {', '.join(failed)}",
            )
        else:
            final, reason = "completed", None
        await patiently(self.store.finish_run, self.run.id, final, reason)
        self.log.info("run_finished", status=final, reason=reason)
        return final

    # ---- cancel -----------------------------------------------------------------------------

    def cancel(self, reason: str = "canceled by user") -> None:
        """Stop starting steps and stop the running ones' process groups."""
        if self._cancel_reason is not None:
            return
        self._cancel_reason = reason
        self._stopping.set()
        self.log.info("run_canceling", reason=reason)
        for proc in list(self._procs.values()):
            self._stop_process(proc)

    def drain(self, reason: str) -> None:
        """Start no new step (nor retry); the running ones may finish. What never ran is
        ``canceled`` with ``reason`` and so is the run; ``cancel()`` may follow to stop the rest."""
        if self._drain_reason is None:
            self._drain_reason = reason
            self._stopping.set()

    def _stop_process(self, proc: LocalProcess) -> None:
        task = asyncio.ensure_future(proc.stop(self.options.kill_grace))
        self._stoppers.add(task)
        task.add_done_callback(self._stoppers.discard)

    @property
    def canceled(self) -> bool:
        return self._cancel_reason is not None

    # ---- one step ---------------------------------------------------------------------------

    async def _run_step(self, step_id: str) -> str:
        step = self.pipeline.steps[step_id]
        try:
            upstream = self.graph.upstream(step_id)
            fingerprint = await run_parallel(self.values.fingerprint, step_id, upstream)
            if step.allow_reuse and not self.options.regenerate_outputs:
                earlier = await patiently(self.store.find_reusable, fingerprint)
                if earlier is not None and all(Path(p).exists() for p in earlier.outputs.values()):
                    origin = earlier.reused_from or earlier.run_id
                    await patiently(
                        self.store.record_reuse,
                        self.run.id,
                        step_id,
                        reused_from=origin,
                        fingerprint=fingerprint,
                        outputs=earlier.outputs,
                    )
                    self.values.set_outputs(step_id, earlier.outputs)
                    self._emit(StepEvent(step_id, "reused", detail=f"from run {origin}"))
                    return "reused"
            async with self._slots[step.compute]:
                return await self._attempts(step, fingerprint)
        except Exception as exc:  # a bug of ours must still close the step, never leave it running
            self.log.exception("step_crashed", step=step_id)
            await patiently(
                self.store.mark_step,
                self.run.id,
                step_id,
                status="failed",
                reason=f"internal error: {exc}",
            )
            self._emit(StepEvent(step_id, "failed", detail=f"internal error: {exc}"))
            return "failed"

    async def _attempts(self, step: Any, fingerprint: str) -> str:
        max_attempts = step.retries + 1
        for attempt in range(1, max_attempts + 1):
            # A retry is not started once the run is canceled or the daemon shuts down.
            stop = self._cancel_reason or (self._drain_reason if attempt > 1 else None)
            if stop is not None:
                await patiently(
                    self.store.mark_step, self.run.id, step.id, status="canceled", reason=stop
                )
                self._emit(StepEvent(step.id, "canceled", detail=stop))
                return "canceled"
            if (
                attempt == 1 and self._stop_reason is not None
            ):  # waited for a slot while a step failed
                await patiently(
                    self.store.mark_step,
                    self.run.id,
                    step.id,
                    status="skipped",
                    reason=self._stop_reason,
                )
                self._emit(StepEvent(step.id, "skipped", detail=self._stop_reason))
                return "skipped"
            status, reason, _code, duration = await self._attempt_runner.execute(
                step, attempt, fingerprint
            )
            if status == "failed" and attempt < max_attempts and self._cancel_reason is None:
                wait = step.retry_wait(attempt)
                detail = f"{reason}; next attempt in {format_duration(wait)}" if wait else reason
                self._emit(StepEvent(step.id, "retrying", attempt, detail, duration))
                await self._pause_before_retry(wait)
                continue
            self._emit(StepEvent(step.id, status, attempt, reason, duration))
            return status
        raise AssertionError("unreachable")

    async def _pause_before_retry(self, seconds: float) -> None:
        """Wait ``seconds``, or less when the run is canceled or drained meanwhile."""
        if seconds <= 0 or self._stopping.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _attempt_started(self, step: Any, attempt: int, proc: LocalProcess) -> None:
        self._emit(StepEvent(step.id, "started", attempt))
        self.log.info("step_started", step=step.id, attempt=attempt, pid=proc.pid)
        # Known to cancel() only now: one canceled while we were starting it is stopped here.
        self._procs[step.id] = proc
        if self._cancel_reason is not None:
            self._stop_process(proc)

    def _attempt_ended(self, step_id: str) -> None:
        self._procs.pop(step_id, None)

    def _emit(self, event: StepEvent) -> None:
        try:
            self._on_event(event)
        except Exception:  # a broken progress printer must not break the run
            self.log.exception("event_handler_failed")
