"""One on_change schedule's watcher: an asyncio task that drains the observer's inbox, decides
when each file counts (moved in: at once; written: closed and quiet for ``settle``), rescans
(start-up, ``rescan_interval``, after an inotify queue overflow, in a folder new to the watch)
and hands counted files to ``RunMaker``. Which files match, their paths and the folder walk
are ``scheduler.fires.file_scan``'s. The module docstring of ``scheduler.fires.files`` says
what "once" means and what a bare touch does.

Every settle, max_wait and rescan decision reads the injected clock's monotonic time, so a test
clock drives them; only a file's age since its mtime is measured on the system's wall clock,
the one the kernel stamps mtimes with. Folder walks run in a worker thread and ledger reads on
the store's thread: the loop never waits on the disk or the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from scheduler.core.clock import SYSTEM_CLOCK, Clock
from scheduler.core.loopguard import run_blocking, run_parallel
from scheduler.core.pathnames import escape_name
from scheduler.definitions.config import Config
from scheduler.definitions.schedules import ScheduleDef
from scheduler.fires.file_events import (
    CHANGED,
    CLOSED,
    CREATED,
    DELETED,
    MOVED,
    NETWORK_FS_TYPES,
    NEW_DIR,
    OPEN,
    WATCH_LIMIT_ERRNOS,
    WATCH_LIMIT_HINT,
    FsTypeProbe,
    Handler,
    Inbox,
)
from scheduler.fires.file_runs import RunMaker, RunSubmitter
from scheduler.fires.file_scan import PendingFile, WatchedFolder, found_pending, snapshot
from scheduler.fires.served import PipelineSource
from scheduler.store.protocols import FileLedgerStore
from scheduler.store.records import FileKey

log = structlog.get_logger("scheduler.fires.files")
_MIN_QUIET = 0.05  # a batch burst is over after max(settle, this) with no new file
_STOP_WAIT = 30.0  # how long stop() lets a step under way finish before canceling it
_RETRY = 5.0  # a file the store refused is counted again after this long


class FileWatcher:
    """One on_change schedule: its observer, its pending files, its run requests."""

    def __init__(
        self,
        schedule: ScheduleDef,
        *,
        config: Config,
        store: FileLedgerStore,
        dispatcher: RunSubmitter,
        definitions: PipelineSource,
        fs_type: FsTypeProbe,
        observer_factory: Callable[..., Any],
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        assert schedule.on_change is not None
        self.schedule, self.spec, self.clock = schedule, schedule.on_change, clock
        self.store, self._fs_type, self._observer_factory = store, fs_type, observer_factory
        datastore = config.datastores[self.spec.datastore]
        self.datastore = datastore.name
        self.root = Path(os.path.realpath(datastore.path))
        self.folder = self.root / self.spec.path
        self.files = WatchedFolder(self.root, self.spec)
        self.pending: dict[str, PendingFile] = {}  # by path from the datastore root
        self.refused: set[str] = set()
        self.unhandled: dict[str, str] = {}  # files whose claim failed: why (retried)
        self.overflows = 0
        self.observer_kind = "inotify"
        self.runs = RunMaker(
            schedule, self.datastore, self.root, store, dispatcher, definitions, clock
        )
        self._observer: Any = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self.inbox = Inbox(self._wake_from_observer)
        self._rescan = True  # the start-up scan
        self._overflowed = False  # events were lost: no "open" file's close can be trusted
        self._stopping = False
        self._next_rescan = 0.0

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.folder.mkdir(parents=True, exist_ok=True)
        self._observer = self._start_observer()
        self._task = asyncio.create_task(self._run(), name=f"file-drops:{self.schedule.name}")

    async def stop(self) -> None:
        """Stop watching. A step under way finishes its current claim or run request (a task
        canceled between "claimed" and "recorded" would leave claims for the next start only);
        claims it leaves without a run are the next watcher's ``resume_claimed``."""
        if self._observer is not None:
            observer, self._observer = self._observer, None
            observer.stop()
            await run_parallel(observer.join, 5)
        if self._task is not None:
            self.runs.stopped = True
            self._stopping = True
            self._wake.set()
            await asyncio.wait({self._task}, timeout=_STOP_WAIT)
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def _wake_from_observer(self) -> None:
        if self._loop is not None:
            _wake_soon(self._loop, self._wake)

    def _start_observer(self) -> Any:
        kind = "polling" if self.spec.polling_interval else "inotify"
        fs_type = self._fs_type(self.folder)
        if kind == "inotify" and fs_type in NETWORK_FS_TYPES:
            log.warning(
                "file_watch_polling",
                schedule=self.schedule.name,
                folder=str(self.folder),
                fs_type=fs_type,
                reason=f"{fs_type} is a network filesystem: inotify misses other hosts' writes",
            )
            kind = "polling"
        try:
            return self._observe(kind)
        except OSError as error:
            if kind != "inotify" or error.errno not in WATCH_LIMIT_ERRNOS:
                raise
            log.error(
                "file_watch_limit",
                schedule=self.schedule.name,
                folder=str(self.folder),
                error=str(error),
                hint=WATCH_LIMIT_HINT,
                fallback="polling",
            )
            return self._observe("polling")

    def _observe(self, kind: str) -> Any:
        polling_interval = self.spec.polling_interval or 1.0
        observer = self._observer_factory(kind, polling_interval, self.inbox.overflow)
        observer.schedule(
            Handler(self.inbox, polling=kind == "polling"), str(self.folder), recursive=True
        )
        observer.start()
        self.observer_kind = kind
        return observer

    # ---- the loop --------------------------------------------------------------------------

    async def _run(self) -> None:
        resumed = False
        while not self._stopping:
            # Clear before draining: a put after the drain re-arms the inbox and sets the
            # event again, so no wake-up is lost between the drain and the wait.
            self._wake.clear()
            try:
                if not resumed:
                    await self.runs.resume_claimed()  # claims a crash left without a run
                    resumed = True
                await self._step()
            except Exception:  # one bad file or a store hiccup must not stop the watcher
                log.exception("file_watch_error", schedule=self.schedule.name)
                self._wake.clear()
                await asyncio.sleep(1.0)
                continue
            timeout = self._next_deadline() - self.clock.monotonic()
            if timeout > 0 and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)

    async def _step(self) -> None:
        now = self.clock.monotonic()
        if self._rescan or now >= self._next_rescan:
            self._rescan = False
            self._next_rescan = now + self.spec.rescan_interval
            await self._scan(stale_after=0.0 if self._overflowed else self.spec.rescan_interval)
            self._overflowed = False
        new_dirs = self._take_inbox()
        for folder in new_dirs:
            await self._scan(folder, new_dir=True)
        await self._count_due()
        await self.runs.flush_batch(self._quiet(), busy=self._settling())

    def _quiet(self) -> float:
        return max(self.spec.settle, _MIN_QUIET)

    def _settling(self) -> bool:
        return any(entry.due is not None for entry in self.pending.values())

    def _next_deadline(self) -> float:
        deadline = self._next_rescan
        dues = [e.due for e in self.pending.values() if e.due is not None]
        if dues:
            deadline = min(deadline, min(dues))
        batch_at = self.runs.batch_deadline(self._quiet())
        if batch_at is not None:
            deadline = min(deadline, batch_at)
        return deadline

    def _take_inbox(self) -> list[Path]:
        """Apply drained events to ``pending``; return new folders to walk."""
        items, overflows = self.inbox.drain()
        new_dirs: list[Path] = []
        if overflows:
            self.overflows += overflows
            self._rescan = self._overflowed = True
            log.warning(
                "file_watch_overflow",
                schedule=self.schedule.name,
                overflows=self.overflows,
                action="full rescan",
            )
            self._wake.set()
        now = self.clock.monotonic()
        for path, kind in items.items():
            if kind == NEW_DIR:
                if Path(path).is_relative_to(self.folder) and not self._rescan:
                    new_dirs.append(Path(path))
                continue
            rel = self.files.relative(path)
            if rel is None:
                continue
            if kind == DELETED:
                self.pending.pop(rel, None)
            elif kind == OPEN:
                self.pending[rel] = PendingFile(None, None, now)
            elif kind == CREATED:
                # watchdog also reports files that beat a new folder's watch as creates; if a
                # walk already found the file, keep its settle check (a writer's next write
                # or close still arrives as its own event).
                if rel not in self.pending or self.pending[rel].due is None:
                    self.pending[rel] = PendingFile(None, None, now)
            elif kind == MOVED:
                self.pending[rel] = PendingFile(now, None, now)
            elif kind in (CLOSED, CHANGED):
                settled_at = now + self.spec.settle
                self.pending[rel] = PendingFile(settled_at, snapshot(self.files.file(rel)), now)
        return new_dirs

    async def _count_due(self) -> None:
        now = self.clock.monotonic()
        ready: list[FileKey] = []
        outside: list[FileKey] = []
        for rel, entry in list(self.pending.items()):
            if entry.due is None or entry.due > now:
                continue
            current = snapshot(self.files.file(rel))
            if current is None:
                del self.pending[rel]
            elif entry.snap is not None and current != entry.snap:
                still_changing = dataclasses.replace(
                    entry, due=now + self.spec.settle, snap=current
                )
                self.pending[rel] = still_changing
            elif self._confined(rel):
                del self.pending[rel]
                ready.append(FileKey(rel, current[0], current[1]))
            else:
                del self.pending[rel]
                outside.append(FileKey(rel, current[0], current[1]))
        if outside:
            reason = f"leads outside datastore '{self.datastore}'"
            try:
                await self.runs.skip(outside, reason)
            except Exception as error:
                for key in outside:
                    self._not_handled(key, error)
        if ready:
            await self._take(ready)

    async def _take(self, ready: list[FileKey]) -> None:
        """Claim and request runs; a file the store refuses neither holds back the others nor
        waits unseen: it is logged, counted (``status``) and tried again after ``_RETRY``."""
        try:
            await self.runs.take(ready)
        except Exception as error:
            if len(ready) > 1 and not self._stopping:
                for key in ready:  # claims are idempotent: retrying a claimed file is safe
                    await self._take([key])
                return
            self._not_handled(ready[0], error)
            return
        for key in ready:
            self.unhandled.pop(key.path, None)

    def _not_handled(self, key: FileKey, error: Exception) -> None:
        first = key.path not in self.unhandled
        self.unhandled[key.path] = f"{type(error).__name__}: {error}"[:500]
        now = self.clock.monotonic()
        self.pending[key.path] = PendingFile(now + _RETRY, (key.size, key.mtime_ns), now)
        if first:
            log.error(
                "file_not_handled",
                schedule=self.schedule.name,
                path=key.path,
                error=self.unhandled[key.path],
                retry_in=_RETRY,
            )

    # ---- scanning ----------------------------------------------------------------------------

    async def _scan(
        self, top: Path | None = None, *, new_dir: bool = False, stale_after: float | None = None
    ) -> None:
        """Find every matching file the ledger does not know (dropped while down, or missed)
        under ``top`` (default: the whole watched folder). In a ``new_dir``, watchdog reports
        files that beat the folder's new watch as plain creates (no close, no move will
        follow): those count once quiet for ``settle``, like a polled file. A file seen
        opened but no close for ``stale_after`` seconds (0 after an overflow, whose lost
        events may include its close) is treated the same way."""
        found = await run_parallel(self.files.walk, top or self.folder)
        oldest = self.clock.monotonic() - (stale_after if stale_after is not None else float("inf"))

        def takes(rel: str) -> bool:
            entry = self.pending.get(rel)
            if entry is None:
                return True
            return entry.due is None and (new_dir or entry.seen_at <= oldest)

        found = [f for f in found if takes(f.path)]
        known = (
            await run_blocking(self.store.known_files, self.schedule.name, found)
            if found
            else set()
        )
        # mtimes come from the kernel's wall clock: a file's age is measured on that clock.
        wall, now, quiet = time.time_ns(), self.clock.monotonic(), self.spec.settle
        added = 0
        for key in found:
            if key in known:
                continue
            self.pending[key.path] = found_pending(key, wall, now, quiet)
            added += 1
        if added:
            log.info("file_scan_found", schedule=self.schedule.name, files=added)

    # ---- paths -------------------------------------------------------------------------------

    def _confined(self, rel: str) -> bool:
        """Refuse (and log once) a file whose real path leads outside the datastore."""
        real = Path(os.path.realpath(self.files.file(rel)))
        if real == self.root or real.is_relative_to(self.root):
            self.refused.discard(rel)
            return True
        if rel not in self.refused:
            self.refused.add(rel)
            log.error(
                "file_refused",
                schedule=self.schedule.name,
                path=rel,
                target=escape_name(str(real)),
                reason=f"leads outside datastore '{self.datastore}' ({self.root})",
            )
        return False

    def status(self) -> dict[str, Any]:
        """For callers off the loop: it reads the ledger."""
        return {
            "datastore": self.datastore,
            "path": self.spec.path,
            "pending": len(self.pending) + self.runs.waiting(),
            "last_file": self.store.last_file(self.schedule.name),
            "observer": self.observer_kind,
            "overflows": self.overflows,
            "unhandled": len(self.unhandled),  # the ledger's ``skipped`` rows: ``schedules``
            "refused": len(self.refused),
        }


def _wake_soon(loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
    """From an observer thread: wake the watcher's task (ignored once the loop has closed)."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(event.set)
