"""Runs one attempt of one step: prepares its working folder, records the attempt, spawns the
step's process, waits for it, reads its metrics and records how it ended.

It promises the order of a run's writes for one attempt: ``begin_attempt`` is committed before
the process is spawned, ``set_attempt_process`` right after, and the metrics before
``end_attempt``; each store call is awaited before the next step is taken. It walks no DAG and
decides no retries: ``RunExecutor`` calls it once per attempt and is told when the process has
started (so ``cancel()`` can stop it) and when it has ended.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scheduler.compute.local import LocalProcess, start_step, step_environment
from scheduler.core.clock import Clock
from scheduler.core.crashpoints import crashpoint
from scheduler.core.errors import PipeschedError
from scheduler.core.procinfo import exit_description
from scheduler.definitions.config import Config
from scheduler.definitions.pipeline import Pipeline
from scheduler.definitions.templating import substitute
from scheduler.executor import workdir as wd
from scheduler.executor.stepenv import step_variables
from scheduler.executor.steps import command_builder
from scheduler.executor.steps.base import StepInvocation
from scheduler.executor.values import StepValues
from scheduler.runtime import read_metrics_file, read_model_requests
from scheduler.store.model_files import models_root, record_step_model
from scheduler.store.patience import patiently
from scheduler.store.private_files import create_private_dir
from scheduler.store.protocols import ExecutorStore
from scheduler.store.records import Metric, RunRecord


class AttemptRunner:
    """Runs the attempts of one run's steps, one call to ``execute`` per attempt.

    ``on_started(step, attempt, proc)`` is called once the process is spawned and recorded, before
    it is awaited; ``on_ended(step_id)`` once it has been awaited, however that ended;
    ``cancel_reason()`` says whether the run is being canceled, and why.
    """

    def __init__(
        self,
        *,
        config: Config,
        store: ExecutorStore,
        pipeline: Pipeline,
        run: RunRecord,
        values: StepValues,
        clock: Clock,
        kill_grace: float,
        log: Any,
        on_started: Callable[[Any, int, LocalProcess], None],
        on_ended: Callable[[str], None],
        cancel_reason: Callable[[], str | None],
    ) -> None:
        self.config, self.store, self.pipeline, self.run = config, store, pipeline, run
        self.values = values
        self.clock = clock
        self.kill_grace = kill_grace
        self.log = log
        self._on_started = on_started
        self._on_ended = on_ended
        self._cancel_reason = cancel_reason

    async def execute(
        self, step: Any, attempt: int, fingerprint: str
    ) -> tuple[str, str | None, int | None, float]:
        run_id = self.run.id
        paths = wd.AttemptPaths.for_attempt(
            self.config.runs_dir,
            run_id,
            step.id,
            attempt,
            shared=self.config.default_datastore.path
            if getattr(self.config.compute.get(step.compute), "type", None) == "dask"
            else None,
        )
        # Step folders hold copies of sources, metrics and outputs: private to the service
        # user even where the state directory's owner made it readable to all.
        create_private_dir(self.config.runs_dir)
        wd.prepare_workdir(paths, step.source_directory)
        outputs = self.values.prepare_outputs(step)
        await patiently(
            self.store.begin_attempt,
            run_id,
            step.id,
            attempt,
            fingerprint=fingerprint,
            log_path=str(paths.log),
            workdir=str(paths.workdir),
        )
        started = self.clock.monotonic()
        interpreter = wd.resolve_interpreter(step.environment.python, self.pipeline.directory)
        if interpreter is None:
            missing = f"interpreter not found: {step.environment.python}"
            wd.note_in_log(paths.log, missing)
            await patiently(
                self.store.end_attempt, run_id, step.id, attempt, status="failed", reason=missing
            )
            return "failed", missing, None, 0.0
        invocation = StepInvocation(
            step,
            interpreter,
            paths.workdir,
            self.values.namespaces(),
            run_id=run_id,
            attempt=attempt,
            paths=paths,
            config=self.config,
            target=self.config.compute.get(step.compute),
            outputs=outputs,
        )
        argv = command_builder(step.type)(invocation)
        env = step_environment(self._step_env(step, attempt, paths, interpreter))
        paths.log.parent.mkdir(parents=True, exist_ok=True)  # on a dask target: not the workdir's
        proc = await start_step(
            argv,
            cwd=paths.workdir,
            env=env,
            log_path=paths.log,
            max_log_bytes=self.config.max_log_bytes,
            target=step.compute,
            warm=step.warm,
        )
        crashpoint("step_spawned")
        await patiently(
            self.store.set_attempt_process,
            run_id,
            step.id,
            attempt,
            pid=proc.pid,
            pgid=proc.pgid,
            proc_start_ticks=proc.start_ticks,
        )
        self._on_started(step, attempt, proc)
        try:
            result = await proc.wait(step.timeout, self.kill_grace)
        finally:
            self._on_ended(step.id)
        await self._ingest_metrics(step.id, attempt, paths.metrics)
        await self._record_models(step.id, paths)
        duration = self.clock.monotonic() - started
        reason: str | None
        cancel_reason = self._cancel_reason()
        if result.timed_out:
            status, reason = "failed", "timeout"
            wd.note_in_log(paths.log, f"timed out after {step.timeout:g}s: process group stopped")
        elif result.stopped or (cancel_reason is not None and result.exit_code != 0):
            status, reason = "canceled", cancel_reason or "canceled"
        elif result.exit_code == 0:
            status, reason = "completed", None
        else:
            status, reason = "failed", exit_description(result.exit_code)
        await patiently(
            self.store.end_attempt,
            run_id,
            step.id,
            attempt,
            status=status,
            exit_code=result.exit_code,
            reason=reason,
            outputs=outputs if status == "completed" else None,
        )
        if status == "completed":
            self.values.set_outputs(step.id, outputs)
        self.log.info("step_" + status, step=step.id, attempt=attempt, exit_code=result.exit_code)
        return status, reason, result.exit_code, duration

    def _step_env(
        self, step: Any, attempt: int, paths: wd.AttemptPaths, interpreter: str
    ) -> dict[str, str]:
        # Templated like arguments (``AML_PARAMETER_x: ${{parameters.x}}``, as the SDK writes).
        values = self.values.namespaces()
        return step_variables(
            run_id=self.run.id,
            step=step.id,
            attempt=attempt,
            experiment=self.run.experiment,
            paths=paths,
            input_datasets=self.values.input_datasets(step),
            datastores={name: str(store.path) for name, store in self.config.datastores.items()},
            output_datasets={
                name: str(self.values.output_path(step.id, name)) for name in step.produces()
            },
            models_dir=models_root(self.config.default_datastore.path),
            interpreter=interpreter,
            state_dir=self.config.state_dir,
            variables={k: substitute(v, values) for k, v in step.environment.variables.items()},
            run_times=self.run.stands_for,
        )

    async def _ingest_metrics(self, step: str, attempt: int, path: Path) -> None:
        """Metrics reach the store even when the script crashed right after logging them: the
        runtime appended each to this file with one write."""
        if not path.exists():
            return
        metrics = [
            Metric(
                step=step,
                attempt=attempt,
                name=m["name"],
                kind=m["kind"],
                value=m["value"],
                logged_at=datetime.fromtimestamp(m.get("time", 0), UTC),
            )
            for m in read_metrics_file(str(path))
        ]
        if metrics:
            await patiently(self.store.add_metrics, self.run.id, metrics)

    async def _record_models(self, step: str, paths: wd.AttemptPaths) -> None:
        """Record the model versions the step registered (``run.register_model``): it copied
        the files and claimed each version in the registry's folder itself."""
        root = models_root(self.config.default_datastore.path)
        for request in read_model_requests(paths.metrics):
            try:
                model = await patiently(
                    record_step_model, self.store, root, request, run_id=self.run.id, step=step
                )
            except PipeschedError as exc:
                wd.note_in_log(paths.log, f"model {request['name']} not recorded: {exc}")
                continue
            wd.note_in_log(paths.log, f"registered model {model.id}")
