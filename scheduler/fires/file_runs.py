"""From counted files to run requests: claim in the ledger first, then ask the dispatcher.

``per_file``: one run per file, its ``datastore://`` path in ``data_path_parameter``.
``batch``: one run per settled burst, the parameter naming a folder of symlinks made for that
run under ``.pipesched/batches/<run id>/`` (the id is generated before the run is recorded).
Every claim is settled by the run's own transaction (``file_fires``), or marked ``skipped``
with the reason when the request is refused; a claim left by a crash is requested again at
the next start (``resume_claimed``).

It runs on the daemon's event loop and never blocks it: ledger calls go to the store's thread
and are awaited in turn (a claim is committed before its run is asked for); a batch's folder of
links is made in a worker thread. Burst timing follows the injected clock.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import structlog

from scheduler.core.clock import SYSTEM_CLOCK, Clock
from scheduler.core.errors import PipeschedError
from scheduler.core.ids import new_run_id
from scheduler.core.loopguard import run_blocking, run_parallel
from scheduler.core.pathnames import unescape_name
from scheduler.definitions.schedules import ScheduleDef
from scheduler.dispatch.dispatcher import Outcome, RunRequest, ShuttingDown
from scheduler.fires.file_scan import snapshot
from scheduler.fires.served import PipelineSource
from scheduler.store.patience import patiently
from scheduler.store.protocols import FileLedgerStore
from scheduler.store.records import FileKey

log = structlog.get_logger("scheduler.fires.files")
BATCHES_DIR = ".pipesched/batches"


class RunSubmitter(Protocol):
    """The dispatcher's door, as file drops use it."""

    def submit(self, request: RunRequest) -> Awaitable[Outcome]: ...


class RunMaker:
    """One on_change schedule's claims and run requests (and its batch, while it fills)."""

    def __init__(
        self,
        schedule: ScheduleDef,
        datastore: str,
        root: Path,
        store: FileLedgerStore,
        dispatcher: RunSubmitter,
        definitions: PipelineSource,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        assert schedule.on_change is not None
        self.schedule, self.spec = schedule, schedule.on_change
        self.datastore, self.root = datastore, root
        self.store, self.dispatcher, self.definitions = store, dispatcher, definitions
        self.clock = clock
        self.concurrency = "allow" if schedule.concurrency == "allow" else "queue"
        self.batch: list[FileKey] = []  # claimed, waiting for the burst to settle
        self._batch_first = 0.0
        self._batch_last = 0.0
        self.stopped = False

    def waiting(self) -> int:
        return len(self.batch)

    async def resume_claimed(self) -> None:
        """Claims a crash left without a run: request them again (if the file is unchanged)."""
        claimed = await run_blocking(self.store.claimed_files, self.schedule.name)
        if not claimed:
            return
        alive, gone = await run_parallel(self._unchanged, claimed)
        if gone:
            await patiently(
                self.store.mark_files,
                self.schedule.name,
                gone,
                outcome="skipped",
                reason="file gone or changed",
            )
        log.info("file_claims_resumed", schedule=self.schedule.name, files=len(alive))
        await self._requested(alive)

    def _unchanged(self, claimed: list[FileKey]) -> tuple[list[FileKey], list[FileKey]]:
        """The claims whose file is still as claimed, and the others."""
        alive: list[FileKey] = []
        gone: list[FileKey] = []
        for key in claimed:
            unchanged = snapshot(self.root / unescape_name(key.path)) == (key.size, key.mtime_ns)
            alive.append(key) if unchanged else gone.append(key)
        return alive, gone

    async def take(self, ready: list[FileKey]) -> None:
        """Counted files: claim them, then request runs for the ones that were new. Once
        stopped, nothing is claimed: the next start's scan finds the files again."""
        if self.stopped:
            return
        new = await run_blocking(self.store.claim_files, self.schedule.name, ready)
        await self._requested(new)

    async def skip(self, keys: list[FileKey], reason: str) -> None:
        """Files that can never start a run as they are: claimed and settled ``skipped`` with
        the reason, so ``fires`` shows why and ``schedules`` counts them."""
        new = await run_blocking(self.store.claim_files, self.schedule.name, keys)
        if new:
            await patiently(
                self.store.mark_files, self.schedule.name, new, outcome="skipped", reason=reason
            )

    async def _requested(self, keys: list[FileKey]) -> None:
        if not keys or self.stopped:
            return
        if self.spec.mode == "batch":
            now = self.clock.monotonic()
            if not self.batch:
                self._batch_first = now
            self._batch_last = now
            self.batch.extend(keys)
            return
        for key in keys:
            if self.stopped:  # the rest stay claimed: the next start requests them
                return
            value = f"datastore://{self.datastore}/{key.path}"
            await self._submit(value, f"file:{key.path}", [key], None)

    def batch_deadline(self, quiet: float) -> float | None:
        if not self.batch:
            return None
        return min(self._batch_first + self.spec.max_wait, self._batch_last + quiet)

    async def flush_batch(self, quiet: float, *, busy: bool) -> None:
        """Start batch runs: full ones at once; the rest once the burst is quiet (no file
        arrived for ``quiet`` and none is settling) or has been held ``max_wait``."""
        now = self.clock.monotonic()
        size = self.spec.max_batch_files
        while self.batch and not self.stopped:
            full = len(self.batch) >= size
            held = now - self._batch_first >= self.spec.max_wait
            settled = now - self._batch_last >= quiet and not busy
            if not (full or held or settled):
                return
            chunk, self.batch = self.batch[:size], self.batch[size:]
            self._batch_first = now
            await self._submit_batch(chunk)

    async def _submit_batch(self, keys: list[FileKey]) -> None:
        run_id = new_run_id(self.clock.now())
        await run_parallel(self._link_batch, run_id, keys)
        value = f"datastore://{self.datastore}/{BATCHES_DIR}/{run_id}"
        await self._submit(value, f"files:{len(keys)}", keys, run_id)

    def _link_batch(self, run_id: str, keys: list[FileKey]) -> None:
        """The batch's folder: a link to each file, under its path below the watched folder."""
        folder = self.root / BATCHES_DIR / run_id
        base = PurePosixPath(self.spec.path) if self.spec.path else None
        for rel in (unescape_name(key.path) for key in keys):
            inside = PurePosixPath(rel).relative_to(base) if base else PurePosixPath(rel)
            link = folder / inside
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.is_symlink():
                os.symlink(self.root / rel, link)
        folder.mkdir(parents=True, exist_ok=True)

    async def _submit(
        self, value: str, trigger: str, keys: list[FileKey], run_id: str | None
    ) -> None:
        parameters: dict[str, Any] = dict(self.schedule.parameters)
        if self.spec.data_path_parameter:
            parameters[self.spec.data_path_parameter] = value
        name = self.schedule.name
        try:
            pipeline = self.definitions.pipeline_for(self.schedule)
        except PipeschedError as error:
            await self._refused(trigger, keys, error)
            return
        request = RunRequest(
            pipeline=pipeline,
            parameters=parameters,
            trigger=trigger,
            schedule=name,
            experiment=self.schedule.experiment,
            concurrency=self.concurrency,
            run_id=run_id,
            file_fires=[(name, key.path, key.size, key.mtime_ns) for key in keys],
            version=self.schedule.pipeline_version,  # NAME@VERSION records its label
        )
        try:
            outcome = await self.dispatcher.submit(request)
        except ShuttingDown:
            self.stopped = True  # the claims stay: the next start requests them again
            return
        except PipeschedError as error:
            await self._refused(trigger, keys, error)
            return
        run = outcome.run
        log.info(
            "file_run_requested",
            schedule=name,
            trigger=trigger,
            outcome=outcome.outcome,
            run_id=run.id if run else None,
        )

    async def _refused(self, trigger: str, keys: list[FileKey], error: PipeschedError) -> None:
        name = self.schedule.name
        log.error("file_run_refused", schedule=name, trigger=trigger, error=str(error))
        await patiently(
            self.store.mark_files, name, keys, outcome="skipped", reason=str(error)[:500]
        )
