"""The daemon's side of its API (``scheduler.api.control.DaemonControl``): health, cancel,
schedule enable/disable/trigger, runs submitted over REST, schedules created and deleted through
the API. Every coroutine runs in the daemon's event loop, which owns the state; what a user's
operation means (which definition a request runs, how an orphaned run is closed, how an API
schedule is checked and kept) is the services', called here in a worker thread. Composed by
``Daemon`` over the ``ServingDaemon`` protocol, so that the lifecycle module stays the start-up and
shutdown recipe and this module names exactly what it needs of it."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from scheduler.core.clock import Clock, iso
from scheduler.core.loopguard import run_blocking
from scheduler.daemon.schedule_set import with_api_schedules
from scheduler.definitions import Pipeline, ScheduleDef
from scheduler.dispatch.dispatcher import RunRequest
from scheduler.services.api_schedules import create_api_schedule, update_api_schedule
from scheduler.services.cancel import cancel_without_daemon
from scheduler.services.runs import resolve_run
from scheduler.services.schedules import (
    UnknownSchedule,
    delete_schedule,
    get_schedule,
    summarize_created,
)
from scheduler.services.submit import load_definition, with_step_failure_rule
from scheduler.store.records import RunRecord

if TYPE_CHECKING:
    from scheduler.daemon.backfills import DaemonBackfills
    from scheduler.daemon.schedule_set import ScheduleSet
    from scheduler.dispatch.dispatcher import Dispatcher
    from scheduler.fires.files import FileDropService
    from scheduler.fires.handler import FireHandler
    from scheduler.store import Store
    from scheduler.store.records import ScheduleState

log = structlog.get_logger("scheduler.daemon.lifecycle")


class ServingDaemon(Protocol):
    """What the control paths need of the running daemon: its parts, the schedule set it serves,
    and the three ways to change what it serves."""

    @property
    def store(self) -> Store: ...
    @property
    def dispatcher(self) -> Dispatcher: ...
    @property
    def fires(self) -> FireHandler: ...
    @property
    def backfills(self) -> DaemonBackfills: ...
    @property
    def files(self) -> FileDropService: ...
    @property
    def set(self) -> ScheduleSet | None: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def epoch(self) -> int | None: ...  # the epoch it leads among standbys; None: no standbys
    @property
    def last_reload(self) -> tuple[datetime, Reloaded] | None: ...  # None: none since start
    @property
    def changing(self) -> asyncio.Lock: ...  # one change of the schedule set at a time

    def register(self, schedule: ScheduleDef, state: ScheduleState) -> None: ...
    def file_schedules(
        self, current: ScheduleSet, states: dict[str, ScheduleState]
    ) -> dict[str, ScheduleDef]: ...
    async def swap(self, new: ScheduleSet) -> None: ...
    async def reload(self) -> Reloaded: ...


@dataclass(frozen=True)
class Reloaded:
    """A reload's outcome: refused (``errors``, the old set keeps serving) or done; the count
    of schedules served after it."""

    reloaded: bool
    errors: list[str]
    schedules: int

    def to_json(self) -> dict[str, Any]:
        return {"reloaded": self.reloaded, "errors": self.errors, "schedules": self.schedules}


def _reload_fields(moment: datetime, outcome: Reloaded) -> dict[str, Any]:
    return {"at": iso(moment), "reloaded": outcome.reloaded, "errors": len(outcome.errors)}


class DaemonControls:
    """The daemon's answers to its API (``scheduler.api.control.DaemonControl``)."""

    def __init__(self, daemon: ServingDaemon) -> None:
        self._daemon = daemon

    async def create_backfill(
        self,
        schedule: str,
        start: str,
        end: str,
        *,
        max_concurrent: int,
        rerun: bool,
        dry_run: bool,
        requested_by: str | None,
    ) -> dict[str, Any]:
        """A backfill, started at once (or its plan, with ``dry_run``)."""
        return await self._daemon.backfills.create(
            schedule,
            start,
            end,
            max_concurrent=max_concurrent,
            rerun=rerun,
            dry_run=dry_run,
            requested_by=requested_by,
        )

    async def cancel_backfill(self, reference: str) -> dict[str, Any]:
        return await self._daemon.backfills.cancel(reference)

    def health(self) -> dict:
        """The daemon's health; reads no store (the store's state is what its probe found).
        ``role`` is ``leader`` among standby daemons (with its ``epoch``), else ``single``."""
        unwritable = self._daemon.store.health.unwritable
        status = (
            {"status": "ok"}
            if unwritable is None
            else {
                "status": "store_unwritable",
                "reason": unwritable,
            }
        )
        epoch = self._daemon.epoch
        reload = self._daemon.last_reload
        return {
            **status,
            "role": "single" if epoch is None else "leader",
            "epoch": epoch,
            "pid": os.getpid(),
            "started_at": iso(self._daemon.started_at),
            "schedules": len(self._daemon.set.schedules) if self._daemon.set else 0,
            "runs_in_flight": self._daemon.dispatcher.runs_in_flight(),
            "last_reload": None if reload is None else _reload_fields(*reload),
        }

    async def reload(self) -> dict:
        """Reload config, schedules and pipelines as SIGHUP does; ``Reloaded.to_json``."""
        return (await self._daemon.reload()).to_json()

    async def cancel_run(self, run_id: str) -> dict:
        run_id = await run_blocking(resolve_run, self._daemon.store, run_id)
        if not await self._daemon.dispatcher.cancel_and_wait(run_id):
            await run_blocking(cancel_without_daemon, self._daemon.store, run_id)
        run = await run_blocking(self._daemon.store.get_run, run_id)
        return run.to_json()

    async def set_schedule_enabled(self, name: str, enabled: bool) -> dict:
        schedule = self._schedule(name)
        await run_blocking(self._daemon.store.set_override, name, enabled)
        states = await run_blocking(self._daemon.store.schedule_states)
        if schedule.on_change is None:
            self._daemon.register(schedule, states[name])
        elif self._daemon.set is not None:
            watched = self._daemon.file_schedules(self._daemon.set, states)
            await self._daemon.files.update(watched)
        log.info("schedule_" + ("enabled" if enabled else "disabled"), schedule=name)
        return {"name": name, "enabled": enabled, "override": enabled}

    async def trigger_schedule(self, name: str) -> dict:
        schedule = self._schedule(name)
        outcome = await self._daemon.fires.fire(schedule, self._daemon.clock.now())
        if outcome is None:
            return {"run_id": None, "outcome": "skipped", "reason": "already fired at this time"}
        return {
            "run_id": outcome.run.id if outcome.run else None,
            "outcome": outcome.outcome,
            "reason": outcome.reason,
        }

    async def submit_pipeline_run(
        self,
        pipeline: str,
        version: str | None,
        parameters: dict,
        experiment: str | None,
        continue_on_step_failure: bool | None,
        regenerate_outputs: bool = False,
    ) -> RunRecord:
        """A run requested over the API (trigger ``api``), of a published version or the
        working copy; parameters are checked before anything is recorded."""
        assert self._daemon.set is not None
        definition, label = await run_blocking(
            load_definition,
            self._daemon.set.config,
            self._daemon.store,
            pipeline=pipeline,
            version=version,
        )
        return await self.submit_definition_run(
            definition,
            label,
            parameters,
            experiment,
            continue_on_step_failure,
            regenerate_outputs=regenerate_outputs,
        )

    async def submit_definition_run(
        self,
        definition: Pipeline,
        version: str | None,
        parameters: dict,
        experiment: str | None,
        continue_on_step_failure: bool | None,
        regenerate_outputs: bool = False,
    ) -> RunRecord:
        """A run over the API (trigger ``api``) of a loaded definition: a published version,
        the working copy, or a snapshot uploaded by the SDK."""
        outcome = await self._daemon.dispatcher.submit(
            RunRequest(
                pipeline=with_step_failure_rule(definition, continue_on_step_failure),
                parameters=parameters,
                trigger="api",
                experiment=experiment,
                version=version,
                regenerate_outputs=regenerate_outputs,
            )
        )
        assert outcome.run is not None
        return outcome.run

    async def create_schedule(self, definition: dict) -> dict:
        """Keep a schedule created through the API and serve it at once; its ``schedules
        --json`` object. InvalidSchedule (→ 422) or ScheduleExists (→ 409) change nothing."""
        async with self._daemon.changing:
            assert self._daemon.set is not None
            config = self._daemon.set.config
            schedule = await run_blocking(
                create_api_schedule, config, self._daemon.store, definition
            )
            await self._daemon.swap(
                await run_blocking(with_api_schedules, self._daemon.set, self._daemon.store)
            )
        log.info("schedule_created", schedule=schedule.name, pipeline=schedule.pipeline)
        summary = await run_blocking(
            summarize_created, self._daemon.store, schedule, self._daemon.clock.now()
        )
        return summary.to_json()

    async def get_schedule(self, name: str) -> dict:
        assert self._daemon.set is not None
        summary = await run_blocking(
            get_schedule,
            self._daemon.set.config,
            self._daemon.store,
            name,
            self._daemon.clock.now(),
        )
        return summary.to_json()

    async def update_schedule(self, name: str, definition: dict) -> dict:
        """Replace an API schedule's definition (a rename too) and serve the change at once;
        nothing changes when it is refused."""
        async with self._daemon.changing:
            assert self._daemon.set is not None
            config = self._daemon.set.config
            schedule = await run_blocking(
                update_api_schedule, config, self._daemon.store, name, definition
            )
            await self._daemon.swap(
                await run_blocking(with_api_schedules, self._daemon.set, self._daemon.store)
            )
        log.info("schedule_updated", schedule=schedule.name, was=name)
        summary = await run_blocking(
            summarize_created, self._daemon.store, schedule, self._daemon.clock.now()
        )
        return summary.to_json()

    async def delete_schedule(self, name: str) -> None:
        """Stop and forget an API schedule (its fire records stay); one of schedules.yaml is
        refused (→ 409)."""
        async with self._daemon.changing:
            assert self._daemon.set is not None
            await run_blocking(delete_schedule, self._daemon.set.config, self._daemon.store, name)
            await self._daemon.swap(
                await run_blocking(with_api_schedules, self._daemon.set, self._daemon.store)
            )
        log.info("schedule_deleted", schedule=name)

    def _schedule(self, name: str) -> ScheduleDef:
        schedule = self._daemon.set.schedules.get(name) if self._daemon.set else None
        if schedule is None:
            raise UnknownSchedule(
                name, set(self._daemon.set.schedules) if self._daemon.set else set()
            )
        return schedule
