"""File-drop triggers (``on_change`` schedules): every file dropped into a datastore folder is
handled exactly once, as its own run (``per_file``) or as part of a settled burst (``batch``).

Threads only at the edges: watchdog's observer threads fill an ``Inbox``; one asyncio task per
schedule (``FileWatcher``) drains it, decides when a file counts, claims it in the store's
ledger (insert-or-ignore on schedule, path, size, mtime) and only then asks the dispatcher for
its run. The ledger, not memory, is what makes "once": a restart rescans the folder and starts
runs only for files the ledger does not know, plus claims a crash left without a run.

A bare ``touch`` of a handled file changes its mtime, so it is a new (path, size, mtime) and
counts again: the ledger cannot tell new content from a new time, and re-running is the safe
side. A file still open for writing when a rescan finds it counts only once it has been quiet
(mtime older than ``settle``); inotify's close event is what makes the live path exact.

Everything here runs on the daemon's event loop and never blocks it (see ``FileWatcher``); the
watchers' timing follows the clock the daemon passes down.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from scheduler.core.clock import SYSTEM_CLOCK, Clock
from scheduler.definitions.config import Config
from scheduler.definitions.pipeline import Pipeline
from scheduler.definitions.schedules import ScheduleDef
from scheduler.fires.file_events import FsTypeProbe, make_observer, mount_fs_type
from scheduler.fires.file_runs import RunSubmitter
from scheduler.fires.file_watcher import FileWatcher
from scheduler.fires.served import PipelineSource
from scheduler.store.protocols import FileLedgerStore

log = structlog.get_logger("scheduler.fires.files")


class FileDropService:
    """The daemon's file-drop triggers: one ``FileWatcher`` per enabled on_change schedule.
    ``definitions`` is the set the daemon serves; the daemon replaces it on reload."""

    def __init__(
        self,
        *,
        config: Config,
        store: FileLedgerStore,
        dispatcher: RunSubmitter,
        definitions: PipelineSource,
        clock: Clock = SYSTEM_CLOCK,
        fs_type: FsTypeProbe = mount_fs_type,
        observer_factory: Callable[..., Any] = make_observer,
    ) -> None:
        self.config, self.store, self.dispatcher, self.clock = config, store, dispatcher, clock
        self.definitions = definitions
        self._fs_type, self._observer_factory = fs_type, observer_factory
        self.watchers: dict[str, FileWatcher] = {}

    async def start(self, schedules: dict[str, ScheduleDef]) -> None:
        await self.update(schedules)

    async def update(self, schedules: dict[str, ScheduleDef]) -> None:
        wanted = {name: s for name, s in schedules.items() if s.on_change is not None and s.enabled}
        for name in list(self.watchers):
            old = self.watchers[name]
            if name not in wanted or wanted[name] != old.schedule:
                await self.watchers.pop(name).stop()
        for name, schedule in wanted.items():
            if name in self.watchers:
                continue
            watcher = FileWatcher(
                schedule,
                config=self.config,
                store=self.store,
                dispatcher=self.dispatcher,
                definitions=self,
                fs_type=self._fs_type,
                observer_factory=self._observer_factory,
                clock=self.clock,
            )
            try:
                await watcher.start()
            except Exception:
                log.exception("file_watch_failed", schedule=name)
                await watcher.stop()
                continue
            self.watchers[name] = watcher
            log.info(
                "file_watch_started",
                schedule=name,
                folder=str(watcher.folder),
                observer=watcher.observer_kind,
            )

    async def stop(self) -> None:
        for name in list(self.watchers):
            await self.watchers.pop(name).stop()

    def pipeline_for(self, schedule: ScheduleDef) -> Pipeline:
        """The pipeline of the set served now (the daemon swaps ``definitions`` on reload)."""
        return self.definitions.pipeline_for(schedule)

    def backlog(self) -> dict[str, int]:
        """Files seen but not yet run, per watched schedule; reads no store (a scrape may ask
        from another thread, hence the copy of the watchers first)."""
        return {
            name: len(watcher.pending) + watcher.runs.waiting()
            for name, watcher in list(self.watchers.items())
        }

    def status(self, name: str) -> dict[str, Any]:
        """For callers off the loop: it reads the ledger."""
        watcher = self.watchers.get(name)
        if watcher is not None:
            return watcher.status()
        return {
            "datastore": None,
            "path": None,
            "pending": 0,
            "last_file": self.store.last_file(name),
        }
