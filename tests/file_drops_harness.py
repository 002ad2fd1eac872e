"""A FileDropService running in-process on its own asyncio loop (a background thread), with a
real Store and a real Dispatcher, so tests drive real files from the main thread and wait on
the store with deadlines. The not-on-the-loop guard is on while a service lives: a store call or
hash made on the service's loop fails (the test's own thread runs no loop)."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from scheduler.core.loopguard import ENV_VAR as ASSERT_OFF_LOOP
from scheduler.definitions.pipeline import Pipeline
from scheduler.definitions.schedule_loader import build_schedule
from scheduler.definitions.schedules import ScheduleDef
from scheduler.dispatch.dispatcher import Dispatcher
from scheduler.fires.files import FileDropService
from tests.projects import Project, make_project

PIPELINE = """
parameters:
  input_path: {type: path}
steps:
  s: {type: command, command: ["true", "${{parameters.input_path}}"], allow_reuse: false}
"""


class ProjectPipelines:
    """The definitions served: each schedule's pipeline, loaded from the project when asked."""

    def __init__(self, project: Project) -> None:
        self.project = project

    def pipeline_for(self, schedule: ScheduleDef) -> Pipeline:
        pipeline: Pipeline = self.project.load(schedule.pipeline)
        return pipeline


class Service:
    """Start/stop the service like the daemon does; the store is shared with the test."""

    def __init__(self, project: Project, schedule: dict[str, Any], **service_kwargs: Any) -> None:
        self._guard_was = os.environ.get(ASSERT_OFF_LOOP)
        os.environ[ASSERT_OFF_LOOP] = "1"
        self.project = project
        self.config = project.config()
        self.store = project.store()
        self.schedule = build_schedule(schedule, self.config, None)
        self.name = self.schedule.name
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.dispatcher: Dispatcher | None = None
        self.service: FileDropService | None = None
        self.kwargs = service_kwargs

    def call(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def start(self) -> Service:
        async def start() -> None:
            self.dispatcher = Dispatcher(self.config, self.store, kill_grace=0.5)
            self.service = FileDropService(
                config=self.config,
                store=self.store,
                dispatcher=self.dispatcher,
                definitions=ProjectPipelines(self.project),
                **self.kwargs,
            )
            await self.service.start({self.name: self.schedule})

        self.call(start())
        return self

    def stop(self) -> None:
        async def stop() -> None:
            if self.service is not None:
                await self.service.stop()
            if self.dispatcher is not None:
                await self.dispatcher.shutdown(5)

        self.call(stop())
        self.service = self.dispatcher = None

    def close(self) -> None:
        if self.service is not None:
            self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.store.close()
        if self._guard_was is None:
            os.environ.pop(ASSERT_OFF_LOOP, None)
        else:
            os.environ[ASSERT_OFF_LOOP] = self._guard_was

    def status(self) -> dict:
        assert self.service is not None
        return self.service.status(self.name)

    def watcher(self) -> Any:
        assert self.service is not None
        return self.service.watchers[self.name]

    # ---- what happened -----------------------------------------------------------------

    def runs(self) -> list:
        return [r for r in self.store.list_runs(limit=0) if r.schedule == self.name]

    def triggers(self) -> list[str]:
        return sorted(r.trigger for r in self.runs())

    def finished(self) -> bool:
        runs = self.runs()
        return all(r.status not in ("queued", "running") for r in runs)

    def ledger(self) -> list:
        return self.store.list_file_fires(self.name)


def file_drop_project(
    tmp_path: Path, *, max_concurrent_runs: int = 8, database_url: str | None = None
) -> Project:
    project = make_project(
        tmp_path, max_concurrent_runs=max_concurrent_runs, database_url=database_url
    )
    project.pipeline("drops", PIPELINE)
    project.datastore.mkdir(parents=True, exist_ok=True)
    return project


def on_change(**spec: Any) -> dict[str, Any]:
    """A schedule mapping for the ``drops`` pipeline watching ``inbox/``."""
    concurrency = spec.pop("concurrency", "allow")
    base = {"datastore": "default", "path": "inbox/", "data_path_parameter": "input_path"}
    return {
        "name": "drops",
        "pipeline": "drops",
        "concurrency": concurrency,
        "on_change": {**base, **spec},
    }


def write_slowly(path: Path, parts: int, pause: float) -> None:
    with open(path, "w") as handle:
        for i in range(parts):
            handle.write(f"part {i}\n")
            handle.flush()
            os.fsync(handle.fileno())
            threading.Event().wait(pause)
