"""The real API on 127.0.0.1 for tests and benchmarks: ``create_app`` served by ``serve_tcp`` in
an event loop of its own thread, over a real project (config, pipelines, SQLite store).

``StandInDaemon`` answers the ``DaemonControl`` protocol the way the daemon does for what the API
tests check: submitting (a pipeline by name, or a loaded definition such as an uploaded
snapshot) records a real ``queued`` run through ``scheduler.dispatch.submit.submit_run`` (parameter
validation included), cancel closes the run in the store, enable/disable write the override,
API schedules are created and deleted through ``scheduler.services.api_schedules``. The daemon's own
implementation is tested with the daemon.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from scheduler.api.app import create_app
from scheduler.api.tcp import TcpServer, serve_tcp
from scheduler.core.clock import SYSTEM_CLOCK
from scheduler.core.errors import NotFound, PipeschedError
from scheduler.definitions.config import Config
from scheduler.dispatch.submit import submit_run
from scheduler.store import Store
from scheduler.store.records import FINISHED_RUN_STATUSES, RunRecord

TRAIN = """
experiment: training
parameters:
  reg: {type: float}
  epochs: {type: int, default: 3}
  input_path: {type: path, default: "datastore://default/inbox"}
steps:
  train: {type: python_script, script: train.py, arguments: ["${{parameters.reg}}"]}
"""


class StandInDaemon:
    """The daemon's side of the API, over a real store."""

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store

    def health(self) -> dict:
        return {"status": "ok", "pid": os.getpid(), "schedules": 0, "runs_in_flight": 0}

    async def reload(self) -> dict:
        """Nothing to reload: the stand-in serves no schedules of its own."""
        return {"reloaded": True, "errors": [], "schedules": 0}

    async def cancel_run(self, run_id: str) -> dict:
        run = await asyncio.to_thread(self._cancel, run_id)
        return run.to_json()

    def _cancel(self, run_id: str) -> RunRecord:
        run = self.store.get_run(self.store.resolve_run_id(run_id))
        if run.status in FINISHED_RUN_STATUSES:
            raise PipeschedError(f"run {run.id} has already finished: {run.status}")
        self.store.finish_run(run.id, "canceled", "canceled by user")
        return self.store.get_run(run.id)

    async def set_schedule_enabled(self, name: str, enabled: bool) -> dict:
        if name not in self.store.schedule_states():
            raise NotFound(f"no schedule {name!r}")
        self.store.set_override(name, enabled)
        return {"name": name, "enabled": enabled, "override": enabled}

    async def trigger_schedule(self, name: str) -> dict:
        if name not in self.store.schedule_states():
            raise NotFound(f"no schedule {name!r}")
        return {"run_id": None, "outcome": "skipped", "reason": "stand-in"}

    async def create_schedule(self, definition: dict) -> dict:
        return await asyncio.to_thread(self._create_schedule, definition)

    def _create_schedule(self, definition: dict) -> dict:
        from scheduler.services.api_schedules import create_api_schedule
        from scheduler.services.schedule_summary import summarize

        schedule = create_api_schedule(self.config, self.store, definition)
        state = self.store.schedule_states().get(schedule.name)
        return summarize(schedule, state, None, SYSTEM_CLOCK.now(), source="api").to_json()

    async def get_schedule(self, name: str) -> dict:
        from scheduler.services.schedule_summary import collect_one

        summary = await asyncio.to_thread(
            collect_one, self.config, self.store, name, SYSTEM_CLOCK.now()
        )
        return summary.to_json()

    async def update_schedule(self, name: str, definition: dict) -> dict:
        return await asyncio.to_thread(self._update_schedule, name, definition)

    def _update_schedule(self, name: str, definition: dict) -> dict:
        from scheduler.services.schedules import update_schedule

        return update_schedule(self.config, self.store, name, definition).to_json()

    async def delete_schedule(self, name: str) -> None:
        from scheduler.services.api_schedules import delete_api_schedule

        await asyncio.to_thread(delete_api_schedule, self.config, self.store, name)

    async def create_backfill(self, schedule: str, start: str, end: str, **_: Any) -> dict:
        """The stand-in runs no backfills: a schedule it does not know is 404, others 409."""
        if schedule not in await asyncio.to_thread(self.store.schedule_states):
            raise NotFound(f"no schedule {schedule!r}")
        raise PipeschedError("the stand-in daemon runs no backfills")

    async def cancel_backfill(self, reference: str) -> dict:
        from scheduler.services.backfill_plan import get_backfill

        found = await asyncio.to_thread(get_backfill, self.store, reference)
        return found.to_json()

    async def submit_pipeline_run(
        self,
        pipeline: str,
        version: str | None,
        parameters: dict,
        experiment: str | None,
        continue_on_step_failure: bool | None,
        regenerate_outputs: bool = False,
    ) -> RunRecord:
        return await asyncio.to_thread(self._submit, pipeline, version, parameters, experiment)

    def _submit(
        self, name: str, version: str | None, parameters: dict, experiment: str | None
    ) -> RunRecord:
        from scheduler.services.publish import load_published

        pipeline, label = load_published(self.config, self.store, name, version)
        return self._record(pipeline, label, parameters, experiment)

    async def submit_definition_run(
        self,
        definition: Any,
        version: str | None,
        parameters: dict,
        experiment: str | None,
        continue_on_step_failure: bool | None,
        regenerate_outputs: bool = False,
    ) -> RunRecord:
        if continue_on_step_failure is not None:
            definition = definition.model_copy(
                update={"continue_on_step_failure": continue_on_step_failure}
            )
        return await asyncio.to_thread(self._record, definition, version, parameters, experiment)

    def _record(
        self, pipeline: Any, version: str | None, parameters: dict, experiment: str | None
    ) -> RunRecord:
        return submit_run(
            self.config,
            self.store,
            pipeline,
            parameters,
            trigger="api",
            experiment=experiment,
            version=version,
        )


@dataclass
class LiveApi:
    url: str
    control: StandInDaemon
    store: Store
    config: Config


class _LoopThread:
    """An event loop running in a daemon thread; ``call(coro)`` runs a coroutine in it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@contextmanager
def live_api(
    config: Config,
    store: Store,
    *,
    require_token: bool = True,
    control: Any = None,
    forward_to: Any = None,
) -> Iterator[LiveApi]:
    """The real app on a free port of 127.0.0.1 (the project's ``api.port`` is 0); ``control``
    another ``DaemonControl`` than the stand-in (a standby's), ``forward_to`` as ``create_app``
    takes it."""
    control = control or StandInDaemon(config, store)
    app = create_app(control, store, config, require_token=require_token, forward_to=forward_to)
    loop = _LoopThread()
    server: TcpServer = loop.call(serve_tcp(app, config))
    try:
        yield LiveApi(server.url, control, store, config)
    finally:
        loop.call(server.stop())
        loop.close()
