"""A foreground run of a compiled pipeline (``scheduler.definitions.compiled``): the lean path of
``pipesched run``, which imports neither pydantic nor SQLAlchemy nor structlog before its first
step starts.

It walks the DAG as ``RunExecutor`` does and keeps its promises: every ready step starts at once
(up to its compute target's ``max_workers``), each attempt is one process run by
``compute.local.LocalProcess`` (its own group, a capped log, a timeout, Ctrl-C stops it, what it
leaves behind is killed), retries, reuse by fingerprint, metrics, and a failed step stops the run
unless ``continue_on_step_failure``. Its records are those of the full path, written by
``store.lean_writes``: an attempt's start is committed before its process is spawned, the process
id while it runs, the metrics with the attempt's end. That end waits for the next write (the next
step's start in a chain, the run's finish after the last step) to share its transaction, one sync
to disk instead of two, and is reported once committed. Store writes leave the loop for the store
thread (``run_blocking``) and listing a step's input folders goes to a worker thread, so a signal
is handled at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scheduler.compute.local import LocalProcess, start_step, step_environment
from scheduler.core.crashpoints import crashpoint
from scheduler.core.durations import backoff_wait, format_duration
from scheduler.core.errors import PipeschedError
from scheduler.core.loopguard import run_blocking, run_parallel
from scheduler.core.procinfo import current_owner, exit_description
from scheduler.core.runtimes import RunTimes, request_times
from scheduler.definitions.fingerprint import (
    path_manifest,
    pipeline_content_hash,
    source_tree_hash,
    step_fingerprint,
)
from scheduler.definitions.templating import substitute
from scheduler.executor import workdir as wd
from scheduler.executor.events import StepEvent
from scheduler.executor.stepenv import step_variables
from scheduler.runtime import read_metrics_file, read_model_requests
from scheduler.store import lean_writes as ops
from scheduler.store.lean_writes import LeanRunWriter, Op
from scheduler.store.private_files import create_private_dir

OK_STATUSES = frozenset({"completed", "reused"})
MODELS_FOLDER = Path(".pipesched") / "models"  # as ``store.model_files.models_root``


def retry_wait(step: dict[str, Any], failed_attempt: int) -> float:
    """Seconds to wait after attempt ``failed_attempt`` failed: the plan's retry fields, by the
    same rule as ``StepBase.retry_wait``."""
    return backoff_wait(
        float(step.get("retry_delay") or 0.0),
        float(step.get("retry_backoff") or 1.0),
        float(step["retry_max_delay"]),
        failed_attempt,
    )


@dataclass(frozen=True)
class ExpressRun:
    """A recorded run of a plan: its id, experiment and the time it stands for."""

    id: str
    experiment: str
    times: RunTimes


def source_hashes(plan: dict[str, Any]) -> dict[str, str]:
    """Each step's source folder → the hash of its tree (reads files: run it off the loop)."""
    folders = {step["source_directory"] for step in plan["steps"]}
    return {folder: source_tree_hash(Path(folder)) for folder in sorted(folders)}


def content_hash(plan: dict[str, Any], hashes: dict[str, str]) -> str:
    """As ``dispatch.submit.content_hash``: source folders keyed relative to the pipeline's."""
    directory = plan["pipeline"]["directory"]
    return pipeline_content_hash(
        plan["pipeline"]["definition"],
        {os.path.relpath(folder, directory): digest for folder, digest in hashes.items()},
    )


def record_run(
    plan: dict[str, Any], writer: LeanRunWriter, experiment: str | None, hashes: dict[str, str]
) -> ExpressRun:
    """Record the run, owned by this process, as running with a pending row per step."""
    pipeline = plan["pipeline"]
    if experiment is not None and not experiment.strip():
        raise PipeschedError("the experiment name cannot be empty")
    chosen = experiment or pipeline["experiment"]
    run_id, created_at = writer.create_running_run(
        pipeline=pipeline["name"],
        content_hash=content_hash(plan, hashes),
        definition=pipeline["definition"],
        experiment=chosen,
        parameters=pipeline["parameters"],
        steps=[(s["id"], s["display_name"], s["type"]) for s in plan["steps"]],
        owner=current_owner(),
    )
    return ExpressRun(run_id, chosen, request_times(created_at))


class ExpressExecutor:
    """Executes one recorded run of a plan to its end; ``cancel()`` may come from a signal."""

    def __init__(
        self,
        plan: dict[str, Any],
        writer: LeanRunWriter,
        run: ExpressRun,
        *,
        source_hashes: dict[str, str],
        regenerate_outputs: bool = False,
        kill_grace: float = 5.0,
        on_event: Callable[[StepEvent], None] | None = None,
        on_first_spawn: Callable[[], None] | None = None,
        before_lazy_import: Callable[[], None] | None = None,
    ) -> None:
        self.plan, self.writer, self.run = plan, writer, run
        self.config = plan["config"]
        self.pipeline = plan["pipeline"]
        self.steps = {step["id"]: step for step in plan["steps"]}
        self.regenerate_outputs = regenerate_outputs
        self.kill_grace = kill_grace
        self._on_event = on_event or (lambda event: None)
        self._on_first_spawn = on_first_spawn
        # Called before the rare import of the full store (a model to record), so that it never
        # runs beside an import ``on_first_spawn`` started in another thread.
        self._before_lazy_import = before_lazy_import or (lambda: None)
        self._source_hashes = source_hashes
        self.status: dict[str, str] = dict.fromkeys(self.steps, "pending")
        self.data_paths: dict[str, str] = {}
        self.fingerprints: dict[str, str] = {}
        self._procs: dict[str, LocalProcess] = {}
        self._cancel_reason: str | None = None
        self._stop_reason: str | None = None
        self._stoppers: set[asyncio.Task[None]] = set()
        self._slots: dict[str, asyncio.Semaphore] = {}
        # A finished attempt's end waits here for the next write (the next step's start, most
        # often), so both share one transaction; its events are reported once it is committed.
        self._pending: list[Op] = []
        self._pending_events: list[StepEvent] = []
        self._stopping = asyncio.Event()  # set by cancel(): ends a wait between retries

    # ---- the walk ---------------------------------------------------------------------------

    async def execute(self) -> str:
        for step in self.steps.values():
            self._slots.setdefault(step["compute"], asyncio.Semaphore(step["max_workers"]))
        running: dict[asyncio.Task[str], str] = {}
        while True:
            started = False
            if not (self._cancel_reason or self._stop_reason):
                for step_id in self._ready_steps():
                    self.status[step_id] = "running"
                    running[asyncio.ensure_future(self._run_step(step_id))] = step_id
                    started = True
            if not running:
                break
            if not started:  # no step's start to share the transaction with: commit alone
                await self._commit()
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                step_id = running.pop(task)
                self.status[step_id] = status = task.result()
                if status == "failed":
                    await self._skip_downstream(step_id)
                    if not self.pipeline["continue_on_step_failure"] and not self._stop_reason:
                        self._stop_reason = f"pipeline stopped after step '{step_id}' failed"
        return await self._close()

    def _ready_steps(self) -> list[str]:
        return [
            step_id
            for step_id, status in self.status.items()
            if status == "pending"
            and all(self.status[up] in OK_STATUSES for up in self.steps[step_id]["upstream"])
        ]

    def _downstream(self, step_id: str) -> list[str]:
        found: list[str] = []
        frontier = [step_id]
        while frontier:
            current = frontier.pop()
            for other, step in self.steps.items():
                if current in step["upstream"] and other not in found:
                    found.append(other)
                    frontier.append(other)
        return found

    async def _skip_downstream(self, failed: str) -> None:
        for step_id in self._downstream(failed):
            if self.status[step_id] == "pending":
                await self._finish_pending(step_id, "skipped", f"upstream step '{failed}' failed")

    async def _finish_pending(self, step_id: str, status: str, reason: str) -> None:
        self.status[step_id] = status
        await self._commit(ops.mark_step(self.run.id, step_id, status=status, reason=reason))
        self._emit(StepEvent(step_id, status, detail=reason))

    async def _commit(self, *more: Op) -> None:
        """Commit what waits and ``more`` in one transaction, then report what waited."""
        batch, events = [*self._pending, *more], self._pending_events
        self._pending, self._pending_events = [], []
        if batch:
            await run_blocking(self.writer.commit, batch)
        for event in events:
            self._emit(event)

    async def _close(self) -> str:
        """Settle the steps that never ran and finish the run: one transaction, with what waits."""
        for step_id, status in list(self.status.items()):
            if status == "pending":
                why = self._cancel_reason or self._stop_reason or "not started"
                settled = "canceled" if self._cancel_reason is not None else "skipped"
                self.status[step_id] = settled
                self._pending.append(
                    ops.mark_step(self.run.id, step_id, status=settled, reason=why)
                )
                self._pending_events.append(StepEvent(step_id, settled, detail=why))
        reason: str | None
        if self._cancel_reason is not None:
            final, reason = "canceled", self._cancel_reason
        elif any(s == "failed" for s in self.status.values()):
            failed = [s for s, st in self.status.items() if st == "failed"]
            final = "failed"
            reason = f"step{'s' if len(failed) > 1 else ''} failed: {', '.join(failed)}"
        else:
            final, reason = "completed", None
        await self._commit(ops.finish_run(self.run.id, final, reason))
        return final

    # ---- cancel -----------------------------------------------------------------------------

    def cancel(self, reason: str = "canceled by user") -> None:
        if self._cancel_reason is not None:
            return
        self._cancel_reason = reason
        self._stopping.set()
        for proc in list(self._procs.values()):
            self._stop_process(proc)

    def _stop_process(self, proc: LocalProcess) -> None:
        task = asyncio.ensure_future(proc.stop(self.kill_grace))
        self._stoppers.add(task)
        task.add_done_callback(self._stoppers.discard)

    @property
    def canceled(self) -> bool:
        return self._cancel_reason is not None

    # ---- one step ---------------------------------------------------------------------------

    async def _run_step(self, step_id: str) -> str:
        step = self.steps[step_id]
        try:
            if step["path_refs"]:  # input folders to list: off the loop
                fingerprint = await run_parallel(self._fingerprint, step)
            else:  # the plan's own values and a few stats: less than a hand-over to a thread
                fingerprint = self._fingerprint(step)
            if step["allow_reuse"] and not self.regenerate_outputs:
                earlier = await run_blocking(self.writer.find_reusable, fingerprint)
                if earlier is not None and all(Path(p).exists() for p in earlier[2].values()):
                    run_id, reused_from, outputs = earlier
                    origin = reused_from or run_id
                    await self._commit(
                        ops.record_reuse(
                            self.run.id,
                            step_id,
                            reused_from=origin,
                            fingerprint=fingerprint,
                            outputs=outputs,
                        )
                    )
                    self.data_paths.update(outputs)
                    self._emit(StepEvent(step_id, "reused", detail=f"from run {origin}"))
                    return "reused"
            slots = self._slots[step["compute"]]
            if slots.locked():  # what waits is not held back while this step waits for a slot
                await self._commit()
            async with slots:
                return await self._attempts(step, fingerprint)
        except Exception as exc:  # a bug of ours must still close the step, never leave it running
            reason = f"internal error: {exc}"
            await self._commit(ops.mark_step(self.run.id, step_id, status="failed", reason=reason))
            self._emit(StepEvent(step_id, "failed", detail=reason))
            return "failed"

    async def _attempts(self, step: dict[str, Any], fingerprint: str) -> str:
        step_id = step["id"]
        max_attempts = step["retries"] + 1
        for attempt in range(1, max_attempts + 1):
            for stopping, why in (
                ("canceled", self._cancel_reason),
                ("skipped", self._stop_reason),
            ):
                if why is not None and (stopping == "canceled" or attempt == 1):
                    await self._commit(
                        ops.mark_step(self.run.id, step_id, status=stopping, reason=why)
                    )
                    self._emit(StepEvent(step_id, stopping, detail=why))
                    return stopping
            # The attempt's end waits for the next commit: so does its event.
            status, reason, duration = await self._attempt(step, attempt, fingerprint)
            if status == "failed" and attempt < max_attempts and self._cancel_reason is None:
                wait = retry_wait(step, attempt)
                detail = f"{reason}; next attempt in {format_duration(wait)}" if wait else reason
                self._pending_events.append(
                    StepEvent(step_id, "retrying", attempt, detail, duration)
                )
                if wait > 0:  # the failure is recorded and told before the wait, not after
                    await self._commit()
                    await self._pause_before_retry(wait)
                continue
            self._pending_events.append(StepEvent(step_id, status, attempt, reason, duration))
            return status
        raise AssertionError("unreachable")

    async def _pause_before_retry(self, seconds: float) -> None:
        """Wait ``seconds``, or less when the run is canceled meanwhile."""
        if self._stopping.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _attempt(
        self, step: dict[str, Any], attempt: int, fingerprint: str
    ) -> tuple[str, str | None, float]:
        loop = asyncio.get_running_loop()
        run_id, step_id = self.run.id, step["id"]
        runs_dir = Path(self.config["runs_dir"])
        paths = wd.AttemptPaths.for_attempt(runs_dir, run_id, step_id, attempt)
        create_private_dir(runs_dir)
        wd.prepare_workdir(paths, Path(step["source_directory"]))
        outputs = {}
        for name in step["produces"]:
            path = self._output_path(step_id, name)
            wd.reset_output_dir(path)
            outputs[name] = str(path)
        self.data_paths.update(outputs)
        await self._commit(
            ops.begin_attempt(
                run_id,
                step_id,
                attempt,
                fingerprint=fingerprint,
                log_path=str(paths.log),
                workdir=str(paths.workdir),
            )
        )
        started = loop.time()
        interpreter = wd.resolve_interpreter(step["python"], Path(self.pipeline["directory"]))
        if interpreter is None:
            missing = f"interpreter not found: {step['python']}"
            wd.note_in_log(paths.log, missing)
            self._end(step_id, attempt, "failed", None, missing, None, paths)
            return "failed", missing, 0.0
        values = self._namespaces()
        argv = [interpreter, step["script"], *(substitute(a, values) for a in step["arguments"])]
        env = step_environment(self._variables(step, attempt, paths, interpreter, values))
        paths.log.parent.mkdir(parents=True, exist_ok=True)
        proc = await start_step(
            argv,
            cwd=paths.workdir,
            env=env,
            log_path=paths.log,
            max_log_bytes=self.config["max_log_bytes"],
            target=step["compute"],
            warm=step.get("warm", True),
        )
        crashpoint("step_spawned")
        # Recorded while the step runs; committed before its end is.
        process = ops.set_attempt_process(
            run_id, step_id, attempt, pid=proc.pid, start_ticks=proc.start_ticks
        )
        recorded = asyncio.ensure_future(run_blocking(self.writer.commit, [process]))
        self._procs[step_id] = proc
        self._emit(StepEvent(step_id, "started", attempt))
        if self._cancel_reason is not None:
            self._stop_process(proc)
        if self._on_first_spawn is not None:
            first, self._on_first_spawn = self._on_first_spawn, None
            first()
        try:
            result = await proc.wait(step["timeout"], self.kill_grace)
        finally:
            self._procs.pop(step_id, None)
            await recorded
        duration = loop.time() - started
        reason: str | None
        if result.timed_out:
            status, reason = "failed", "timeout"
            wd.note_in_log(
                paths.log, f"timed out after {step['timeout']:g}s: process group stopped"
            )
        elif result.stopped or (self._cancel_reason is not None and result.exit_code != 0):
            status, reason = "canceled", self._cancel_reason or "canceled"
        elif result.exit_code == 0:
            status, reason = "completed", None
        else:
            status, reason = "failed", exit_description(result.exit_code)
        kept = outputs if status == "completed" else None
        requests = read_model_requests(paths.metrics)
        if requests:
            await run_blocking(self._record_models, step_id, paths, requests)
        self._end(step_id, attempt, status, result.exit_code, reason, kept, paths)
        if status == "completed":
            self.data_paths.update(outputs)
        return status, reason, duration

    def _end(
        self,
        step_id: str,
        attempt: int,
        status: str,
        exit_code: int | None,
        reason: str | None,
        outputs: dict[str, str] | None,
        paths: wd.AttemptPaths,
    ) -> None:
        """The attempt's metrics and end, left for the next commit (``_commit``)."""
        self._pending.append(
            ops.end_attempt(
                self.run.id,
                step_id,
                attempt,
                status=status,
                exit_code=exit_code,
                reason=reason,
                outputs=outputs,
                metrics=read_metrics_file(paths.metrics),
            )
        )

    def _record_models(
        self, step_id: str, paths: wd.AttemptPaths, requests: list[dict[str, Any]]
    ) -> None:
        """Models a step registered go through the full store: rare, and worth its import."""
        self._before_lazy_import()
        # lazy: the model registry needs the full store, which a run without models never loads
        from scheduler.core.errors import PipeschedError
        from scheduler.store.model_files import record_step_model
        from scheduler.store.store import Store

        store = Store.open(f"sqlite:///{self.config['database']}")
        root = Path(self.config["default_datastore"]) / MODELS_FOLDER
        try:
            for request in requests:
                try:
                    model = record_step_model(
                        store, root, request, run_id=self.run.id, step=step_id
                    )
                except PipeschedError as exc:
                    wd.note_in_log(paths.log, f"model {request['name']} not recorded: {exc}")
                    continue
                wd.note_in_log(paths.log, f"registered model {model.id}")
        finally:
            store.close()

    # ---- values -----------------------------------------------------------------------------

    def _output_path(self, step_id: str, data_name: str) -> Path:
        """``<datastore>/.pipesched/outputs/<run>/<step>/<data>/``, as ``StepValues``."""
        datastore = self.pipeline["data_datastores"][data_name]
        base = Path(self.config["datastores"][datastore])
        return base / ".pipesched" / "outputs" / self.run.id / step_id / data_name

    def _namespaces(self) -> dict[str, dict[str, str]]:
        return {
            "parameters": self.pipeline["argv_parameters"],
            "data": dict(self.data_paths),
            "run": {
                "id": self.run.id,
                "experiment": self.run.experiment,
                **self.run.times.template_values(),
            },
        }

    def _variables(
        self,
        step: dict[str, Any],
        attempt: int,
        paths: wd.AttemptPaths,
        interpreter: str,
        values: dict[str, dict[str, str]],
    ) -> dict[str, str]:
        argv_parameters = self.pipeline["argv_parameters"]
        inputs = {name: argv_parameters[name] for name in step["path_refs"]}
        inputs.update({n: self.data_paths[n] for n in step["consumes"] if n in self.data_paths})
        return step_variables(
            run_id=self.run.id,
            step=step["id"],
            attempt=attempt,
            experiment=self.run.experiment,
            paths=paths,
            input_datasets=inputs,
            datastores=self.config["datastores"],
            output_datasets={n: str(self._output_path(step["id"], n)) for n in step["produces"]},
            models_dir=Path(self.config["default_datastore"]) / MODELS_FOLDER,
            interpreter=interpreter,
            state_dir=Path(self.config["state_dir"]),
            variables={k: substitute(v, values) for k, v in step["variables"].items()},
            run_times=self.run.times,
        )

    def _fingerprint(self, step: dict[str, Any]) -> str:
        """As ``StepValues.fingerprint``, from the plan."""
        argv_parameters = self.pipeline["argv_parameters"]
        manifests = {name: path_manifest(Path(argv_parameters[name])) for name in step["path_refs"]}
        interpreter = wd.resolve_interpreter(step["python"], Path(self.pipeline["directory"]))
        if interpreter is None:
            interpreter_id = "missing"
        else:
            interpreter_id = f"{wd.interpreter_prefix(interpreter)} {os.path.realpath(interpreter)}"
            if wd.is_own_interpreter(interpreter):
                interpreter_id += f" {sys.version}"
        parameters = self.pipeline["parameters"]
        fingerprint = step_fingerprint(
            definition=step["definition"],
            argv_parameters=argv_parameters,
            referenced_parameters={name: parameters.get(name) for name in step["parameter_refs"]},
            source_hash=self._source_hashes[step["source_directory"]],
            interpreter=interpreter_id,
            upstream={up: self.fingerprints.get(up, "") for up in step["upstream"]},
            manifests=manifests,
            run_times=self.run.times.template_values(),
        )
        self.fingerprints[step["id"]] = fingerprint
        return fingerprint

    def _emit(self, event: StepEvent) -> None:
        with contextlib.suppress(Exception):  # a broken progress printer must not break the run
            self._on_event(event)
