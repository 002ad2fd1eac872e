"""``pipesched daemon``: the wiring. One asyncio loop owns the state; threads only at the edges.

Start-up reads like a recipe: load config → open the store (migrate) → take the lock → load
definitions → recover → resume claimed fires → catch up → register triggers → serve the control
socket → READY=1. Shutdown is the same list backwards. Signals only set events.

The loop never blocks: the daemon's own store calls (and the lock, recovery, loading
definitions) are handed to threads through ``scheduler.core.loopguard`` and awaited in turn.
The fire paths below get what they need handed down: the set of definitions served now
(replaced on reload), the store, the clock; none of them calls back into the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import os
import signal
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import structlog

from scheduler.compute.cgroups import delegated_tree
from scheduler.compute.reaper import become_subreaper
from scheduler.core.clock import Clock
from scheduler.core.durations import format_duration
from scheduler.core.errors import DefinitionErrors
from scheduler.core.logging import configure_logging
from scheduler.core.loopguard import run_blocking, run_parallel
from scheduler.core.testclock import clock_from_env
from scheduler.daemon import collector
from scheduler.daemon.alerts import Alerts, notify_routes
from scheduler.daemon.api_servers import start_api
from scheduler.daemon.backfills import DaemonBackfills
from scheduler.daemon.ballast import Ballast
from scheduler.daemon.control import DaemonControls, Reloaded
from scheduler.daemon.lock import DaemonLock, acquire
from scheduler.daemon.lock_watch import keep_daemon_lock
from scheduler.daemon.notify import Notifier, watchdog_loop
from scheduler.daemon.pruning import prune_daily
from scheduler.daemon.recovery import recover, watch_owners
from scheduler.daemon.schedule_set import ScheduleSet, load_schedule_set, with_api_schedules
from scheduler.daemon.standby import Identity, SchemaTooNew, close_lost_leader_runs
from scheduler.daemon.standing_by import StoodDown, stand_by_until_leading
from scheduler.daemon.store_watch import StoreWatch
from scheduler.definitions import ScheduleDef
from scheduler.definitions.config import Config, HaConfig
from scheduler.definitions.pipeline import Pipeline
from scheduler.dispatch.dispatcher import Dispatcher
from scheduler.executor.warmpool import start_warm_pool, stop_warm_pool, warm_targets, watch_zygotes
from scheduler.fires.files import FileDropService
from scheduler.fires.handler import FireHandler
from scheduler.fires.timer import Firing
from scheduler.services.snapshots import definition_for_run
from scheduler.store import Store
from scheduler.store.engine import end_stalled_transactions
from scheduler.store.patience import patiently
from scheduler.store.records import Leadership, RunRecord, ScheduleState
from scheduler.triggers.time import time_trigger

log = structlog.get_logger("scheduler.daemon.lifecycle")

STATUS_EVERY_SECONDS = 30.0
# After the shutdown grace and the kill grace, how long shutdown waits for an unwritable store
# to take the outcomes it holds; what is still unwritten then is closed at the next start.
SHUTDOWN_STORE_GRACE = 15.0


class Daemon:
    def __init__(
        self, config_path: Path, clock: Clock | None = None, *, standby: bool = False
    ) -> None:
        self.config_path = config_path
        self.standby = standby  # `pipesched daemon --standby`: ha.mode standby for this one
        self.epoch: int | None = None  # the epoch this daemon leads, among standbys
        self.me: Identity | None = None
        self.replaced: Leadership | None = None  # the leadership this daemon took over
        self.lease_keeper: asyncio.Task[None] | None = None
        self.clock = clock or clock_from_env()
        self.stop_event = asyncio.Event()
        # unset: nothing the daemon starts inherits NOTIFY_SOCKET or WATCHDOG_*.
        self.notifier = Notifier.from_environ(unset=True)
        self.started_at: datetime = self.clock.now()
        self.set: ScheduleSet | None = None
        self._reloading: asyncio.Task[Reloaded] | None = None
        self.last_reload: tuple[datetime, Reloaded] | None = None  # when, and its outcome
        self.changing = asyncio.Lock()  # one change of the schedule set at a time
        self.controls = DaemonControls(self)
        self.ballast: Ballast | None = None
        self.exit_status = 0  # 1 once another daemon took the store's lock
        self.run_url: str | None = None  # the web view's run pages, once the API listens

    # ---- lifecycle --------------------------------------------------------------------------

    async def run(self) -> int:
        # A watchdog kill (SIGABRT) then leaves the stuck loop's traceback in the journal.
        faulthandler.enable()
        become_subreaper()  # what a step leaves behind stays below us, to be killed and reaped
        collector.rest_until_ready()
        current = await run_parallel(load_schedule_set, self.config_path, strict=False)
        config = current.config
        configure_logging(config.logging.level, config.logging.format)
        for error in current.errors:
            log.error("definition_invalid", error=str(error))
        ha = replace(config.ha, mode="standby") if self.standby else config.ha
        try:
            self.store = await run_blocking(
                Store.open, config.database_url, clock=self.clock, migrate=ha.mode != "standby"
            )
        except SchemaTooNew as exc:  # a log line at error priority, for the journal
            log.error("schema_too_new", error=exc.message, hint=exc.hint)
            return 1
        if ha.mode == "standby":
            if self.store.engine.dialect.name == "postgresql":
                end_stalled_transactions(self.store.engine, ha.lease)
            else:
                log.error(
                    "ha_needs_postgresql",
                    error="standby daemons share a PostgreSQL store; this one is SQLite",
                    hint="set database: postgresql+psycopg://... in the config",
                )
                await run_blocking(self.store.close)
                return 1
            try:
                self.lock = await self._lead_or_stand_by(config, ha)
            except SchemaTooNew as exc:
                log.error("ha_schema_too_new", error=exc.message, hint=exc.hint)
                await run_blocking(self.store.close)
                return 1
            except StoodDown:
                log.info("daemon_stopped", role="standby")
                await run_blocking(self.store.close)
                return 0
        else:
            self.lock = await run_blocking(acquire, config.state_dir, self.store, self.started_at)
        try:
            await run_parallel(self._take_step_cgroups)  # ours only once the lock is
            return await self._serve(current)
        finally:
            collector.running_again()
            await self._forget_me()
            await run_blocking(self.lock.release)
            await run_blocking(self.store.close)

    async def _serve(self, current: ScheduleSet) -> int:
        config = current.config
        # The store is open only now.
        current = await run_blocking(with_api_schedules, current, self.store)
        self._log_api_errors(current)
        self.set = current
        self.alerts = Alerts(self.store, self.clock, config)
        self.alerts.route(notify_routes(config, current.schedules, current.pipelines))
        self.dispatcher = Dispatcher(config, self.store, clock=self.clock)
        self.fires = FireHandler(self.store, self.dispatcher, self.clock, current)
        self.backfills = DaemonBackfills(self.store, self.dispatcher, self.clock, lambda: self.set)
        self.firing = Firing(self.fires.on_due, self.clock)
        self.files = FileDropService(
            config=config,
            store=self.store,
            dispatcher=self.dispatcher,
            definitions=current,
            clock=self.clock,
        )
        report = await run_blocking(recover, self.store)
        log.info(
            "recovered",
            closed=len(report.closed),
            requeued=len(report.requeue),
            killed_groups=report.killed_groups,
        )
        await self._requeue(report.requeue)
        await self.fires.resume_claimed()
        states = await run_blocking(self.store.register_schedules, current.sources())
        # The timer starts where catch-up began: a time that falls due while catch-up runs is
        # fired by the timer (a time both see is claimed once), never by neither.
        caught_up_to = self.clock.now()
        await self._catch_up(current, states)
        self.firing.start()
        states = await run_blocking(self.store.schedule_states)
        self._register_all(current, states, after=caught_up_to)
        await self.files.start(self.file_schedules(current, states))
        await self.backfills.resume()
        self.ballast = Ballast(config.state_dir)
        await run_parallel(self.ballast.ensure)
        servers = await start_api(config, self.controls, self.store, self.clock, self._file_backlog)
        if self.me is not None:
            self.me.api_url = servers[0].url  # the TCP listener comes first
        self.run_url = f"{servers[0].url.rstrip('/')}/runs/"
        self.alerts.route(notify_routes(config, current.schedules, current.pipelines, self.run_url))
        self._install_signals()
        collector.running_again()
        self.notifier.ready(self._status_line())
        log.info("daemon_ready", schedules=len(current.schedules), pid=os.getpid())
        # After READY: the zygotes import while the daemon already serves (steps spawn meanwhile).
        warm = start_warm_pool(
            warm_targets(config.compute),
            config.state_dir,
            wait_for_start=False,
            watch_files=True,
            for_daemon=True,
        )
        background = [
            asyncio.ensure_future(watchdog_loop(self.notifier, self.stop_event)),
            asyncio.ensure_future(self.firing.follow_clock_jumps()),
            asyncio.ensure_future(self._report_status()),
            asyncio.ensure_future(watch_owners(self.store)),
            asyncio.ensure_future(
                StoreWatch(
                    self.store,
                    self.clock,
                    self.ballast,
                    on_change=lambda: self.notifier.status(self._status_line()),
                    after_outage=self._after_outage,
                    alerts=self.alerts,
                ).run()
            ),
            asyncio.ensure_future(self.alerts.run()),
            asyncio.ensure_future(keep_daemon_lock(self.lock, self.store, self._lock_lost)),
            asyncio.ensure_future(
                prune_daily(lambda: (self.set or current).config, self.store, self.clock)
            ),
        ]
        if self.lease_keeper is not None:
            background.append(self.lease_keeper)
        if self.replaced is not None:
            lost = close_lost_leader_runs(self.store, self.replaced)
            background.append(asyncio.ensure_future(lost))
        if warm is not None:
            background.append(asyncio.ensure_future(watch_zygotes(warm, self.stop_event)))
        await self.stop_event.wait()
        self.notifier.stopping("stopping")
        log.info("daemon_stopping")
        self.firing.shutdown()
        await self.files.stop()
        await self.backfills.stop()
        try:
            await asyncio.wait_for(
                self._drain(config.shutdown_grace),
                config.shutdown_grace
                + self.dispatcher.kill_grace
                # A replaced leader can never write again: no waiting for its store.
                + (0.0 if self.exit_status else SHUTDOWN_STORE_GRACE),
            )
        except TimeoutError:
            log.error(
                "shutdown_left_unrecorded",
                reason=self.store.health.unwritable,
                action="runs left open are closed at the next start",
            )
        for task in background:
            task.cancel()
        for server in servers:
            await server.stop()
        stop_warm_pool()
        log.info("daemon_stopped")
        return self.exit_status

    async def _lead_or_stand_by(self, config: Config, ha: HaConfig) -> DaemonLock:
        self.me = Identity.of(self.started_at, None)
        lead = await stand_by_until_leading(
            config=config,
            ha=ha,
            store=self.store,
            clock=self.clock,
            started_at=self.started_at,
            me=self.me,
            notifier=self.notifier,
            on_lost=self._lock_lost,
        )
        self.epoch, self.replaced, self.lease_keeper = lead.epoch, lead.replaced, lead.lease_keeper
        return lead.lock

    async def _forget_me(self) -> None:
        """A clean stop takes this daemon off the heartbeat list."""
        if self.me is not None:
            with contextlib.suppress(Exception):
                await run_blocking(self.store.forget_daemons, name=self.me.name)

    def _lock_lost(self, reason: str) -> None:
        """Another daemon holds the store now (``reason`` names it; the store stays fenced):
        stop firing and exit 1."""
        self.exit_status = 1
        self.stop_event.set()

    @staticmethod
    def _take_step_cgroups() -> None:
        """Under systemd with ``Delegate=yes``, each step gets a cgroup of its own
        (``compute.cgroups``); what a killed daemon left in them is killed now."""
        tree = delegated_tree()
        if tree is None:
            return
        cleared = tree.clear_leftovers()
        log.info("step_cgroups", root=str(tree.root), cleared=cleared)

    async def _drain(self, grace: float) -> None:
        await self.dispatcher.shutdown(grace)
        await self.fires.wait_idle()

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stop_event.set)
        loop.add_signal_handler(signal.SIGINT, self.stop_event.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload_soon)

    def _file_backlog(self) -> dict[str, int]:
        """Pending files per on_change schedule (0 for one not watched); reads no store."""
        if self.set is None:
            return {}
        watched = self.files.backlog()
        return {n: watched.get(n, 0) for n, s in self.set.schedules.items() if s.on_change}

    # ---- schedules --------------------------------------------------------------------------

    @staticmethod
    def _enabled(schedule: ScheduleDef, override: bool | None) -> bool:
        return schedule.enabled if override is None else override

    def file_schedules(
        self, current: ScheduleSet, states: dict[str, ScheduleState]
    ) -> dict[str, ScheduleDef]:
        """The enabled on_change schedules (an override in ``states`` beats the definition)."""
        return {
            name: s.model_copy(update={"enabled": True})  # the override is applied here
            for name, s in current.schedules.items()
            if s.on_change is not None
            and self._enabled(s, states[name].override if name in states else None)
        }

    def _register_all(
        self, current: ScheduleSet, states: dict[str, ScheduleState], *, after: datetime
    ) -> None:
        for name, schedule in current.time_schedules().items():
            self.register(schedule, states[name], after=after)

    def register(
        self, schedule: ScheduleDef, state: ScheduleState, *, after: datetime | None = None
    ) -> None:
        """Serve ``schedule`` on the timer from its first fire time after ``after`` (default:
        now; a time already past fires at once). One whose fire times cannot be computed
        (validation refuses those, so only a store state it did not foresee) is logged and not
        served: it never stops the others. ``pipesched schedules`` shows it as ``error``."""
        if not self._enabled(schedule, state.override):
            self.firing.remove(schedule.name)
            return
        try:
            trigger = time_trigger(schedule, state.registered_at)
            first = trigger.next_after(after or self.clock.now())
        except (ValueError, OverflowError, ArithmeticError) as exc:
            log.error("schedule_failed", schedule=schedule.name, error=str(exc))
            self.firing.remove(schedule.name)
            return
        self.firing.set(schedule.name, trigger, first)

    async def _requeue(self, runs: list[RunRecord]) -> None:
        assert self.set is not None
        for run in runs:
            schedule = self.set.schedules.get(run.schedule or "")
            try:
                pipeline = await run_parallel(self._pipeline_of, run)
            except Exception as exc:
                await run_blocking(
                    self.store.finish_run, run.id, "failed", f"daemon restart: {exc}"
                )
                continue
            concurrency = schedule.concurrency if schedule else "allow"
            await self.dispatcher.resume(run, pipeline, concurrency)

    def _pipeline_of(self, run: RunRecord) -> Pipeline:
        """The definition a recorded run was made from: its published snapshot, an SDK
        snapshot with its content hash, else the working copy. Reads the store and hashes
        sources: off the loop only."""
        assert self.set is not None
        pipeline: Pipeline = definition_for_run(self.set.config, self.store, run)
        return pipeline

    def _reload_soon(self) -> None:
        if self._reloading is None or self._reloading.done():
            self._reloading = asyncio.ensure_future(self.reload())
            self._reloading.add_done_callback(self._reload_ended)

    def _reload_ended(self, task: asyncio.Task[Reloaded]) -> None:
        """A SIGHUP reload's end: an exception it did not expect is logged here, never left to
        asyncio's "Task exception was never retrieved"."""
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("reload_failed", error=f"{type(exc).__name__}: {exc}")
            self.notifier.ready(self._status_line())

    async def reload(self) -> Reloaded:
        """Swap in the new definitions atomically (on SIGHUP, or asked over the API); on any
        error the old set keeps serving and the answer carries the errors."""
        self.notifier.reloading("reloading")
        log.info("reload_started")
        async with self.changing:
            try:
                new = await run_parallel(
                    load_schedule_set, self.config_path, strict=True, store=self.store
                )
            except DefinitionErrors as exc:
                errors = [str(error) for error in exc.errors]
            except Exception as exc:
                errors = [str(exc)]
            else:
                errors = []
                self._log_api_errors(new)
                await self.swap(new)
        for error in errors:
            log.error("reload_refused", error=error)
        if not errors:
            log.info("reload_done", schedules=len(new.schedules))
        self.notifier.ready(self._status_line())
        served = len(self.set.schedules) if self.set else 0
        outcome = Reloaded(reloaded=not errors, errors=errors, schedules=served)
        self.last_reload = (self.clock.now(), outcome)
        return outcome

    async def swap(self, new: ScheduleSet) -> None:
        """Serve ``new`` in place of the current set: unchanged time schedules keep their next
        fire time, others are (re)registered or removed, file-drop watchers follow."""
        old = self.set
        assert old is not None
        states = await run_blocking(self.store.register_schedules, new.sources())
        for name in set(old.time_schedules()) - set(new.time_schedules()):
            self.firing.remove(name)
        for name, schedule in new.time_schedules().items():
            unchanged = name in old.schedules and old.fingerprint(name) == new.fingerprint(name)
            if not unchanged or name not in self.firing.names():
                self.register(schedule, states[name])
        self.set = new
        self.alerts.route(notify_routes(new.config, new.schedules, new.pipelines, self.run_url))
        self.fires.definitions = new
        self.files.definitions = new
        overrides = await run_blocking(self.store.schedule_states)
        await self.files.update(self.file_schedules(new, overrides))

    @staticmethod
    def _log_api_errors(current: ScheduleSet) -> None:
        for error in current.api_errors:
            log.error("api_schedule_left_out", error=str(error))

    # ---- status and clocks ------------------------------------------------------------------

    def _status_line(self) -> str:
        if self.set is None:
            return "starting"
        parts = [f"{len(self.set.schedules)} schedules"]
        if (unwritable := self.store.health.unwritable) is not None:
            parts.insert(0, f"store unwritable: {unwritable}")
        upcoming = [(t, n) for n in self.firing.names() if (t := self.firing.next_time(n))]
        if upcoming:
            when, name = min(upcoming)
            left = (when - self.clock.now()).total_seconds()
            parts.append(f"next {name} in {format_duration(max(left, 0))}")
        in_flight = self.dispatcher.runs_in_flight()
        parts.append(f"{in_flight} run{'' if in_flight == 1 else 's'} in flight")
        return "; ".join(parts)

    async def _report_status(self) -> None:
        """The STATUS= line: when a run ends, and every 30 s (the next fire draws near)."""
        ended = self.dispatcher.run_ended
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ended.wait(), STATUS_EVERY_SECONDS)
            ended.clear()
            self.notifier.status(self._status_line())

    async def _catch_up(self, current: ScheduleSet, states: dict[str, ScheduleState]) -> None:
        """Each enabled time schedule's missed fire times, by its catch-up rule; one whose
        times cannot be computed is logged and never stops the others."""
        for name, schedule in current.time_schedules().items():
            state = states.get(name)
            if state is None or not self._enabled(schedule, state.override):
                continue
            try:
                await self.fires.catch_up(schedule, state)
            except (ValueError, OverflowError, ArithmeticError) as exc:
                log.error("schedule_failed", schedule=name, error=str(exc))

    async def _after_outage(self) -> None:
        """What a store outage deferred: fire times that were due while it lasted (the
        catch-up from each schedule's last recorded nominal time, under its catch-up rule, as
        at a start), and fires claimed but not dispatched. Deferred writes of runs and file
        claims went through on their own (``store.patience``); file watchers retry the files
        they could not claim."""
        if self.set is None:
            return
        log.info("store_outage_catch_up")
        try:
            async with self.changing:
                await self.fires.resume_claimed()
                states = await patiently(self.store.schedule_states)
                await self._catch_up(self.set, states)
        except Exception as exc:  # the next outage's end tries again; never kill the probe
            log.error("store_outage_catch_up_failed", error=f"{type(exc).__name__}: {exc}")
