"""From counted files to run requests: claim in the ledger first, then ask the dispatcher.

``per_file``: one run per file, its ``datastore://`` path in ``data_path_parameter``.
``batch``: one run per settled burst, the parameter naming a folder of symlinks made for that
run under ``.pipesched/batches/<run id>/`` (the id is generated before the run is recorded).
Every claim is settled by the run's own transaction (``file_fires``), or marked ``skipped``
with the reason when the request is refused; a claim left by a crash is requested again at
the next start (``resume_claimed``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import structlog

from scheduler.core.errors import PipeschedError
from scheduler.core.ids import new_run_id
from scheduler.definitions.schedules import ScheduleDef
from scheduler.dispatch.dispatcher import RunRequest, ShuttingDown
from scheduler.store.protocols import FileLedgerStore
from scheduler.store.records import FileKey

log = structlog.get_logger("scheduler.fires.files")
BATCHES_DIR = ".pipesched/batches"


class RunMaker:
    def __init__(
        self,
        schedule: ScheduleDef,
        datastore: str,
        root: Path,
        store: FileLedgerStore,
        dispatcher: Any,
        pipelines: Callable[[ScheduleDef], Any],
    ) -> None:
        assert schedule.on_change is not None
        self.schedule, self.spec = schedule, schedule.on_change
        self.datastore, self.root = datastore, root
        self.store, self.dispatcher, self.pipelines = store, dispatcher, pipelines
        self.concurrency = "allow" if schedule.concurrency == "allow" else "queue"
        self.batch: list[FileKey] = []  # claimed, waiting for the burst to settle
        self._batch_first = 0.0
        self._batch_last = 0.0
        self.stopped = False

    def waiting(self) -> int:
        return len(self.batch)

    async def resume_claimed(self) -> None:
        """Claims a crash left without a run: request them again (if the file is unchanged)."""
        claimed = self.store.claimed_files(self.schedule.name)
        if not claimed:
            return
        alive, gone = [], []
        for key in claimed:
            unchanged = _snap(self.root / key.path) == (key.size, key.mtime_ns)
            alive.append(key) if unchanged else gone.append(key)
        if gone:
            self.store.mark_files(
                self.schedule.name, gone, outcome="skipped", reason="file gone or changed"
            )
        log.info("file_claims_resumed", schedule=self.schedule.name, files=len(alive))
        await self._requested(alive)

    async def take(self, ready: list[FileKey]) -> None:
        """Counted files: claim them, then request runs for the ones that were new."""
        new = self.store.claim_files(self.schedule.name, ready)
        await self._requested(new)

    async def _requested(self, keys: list[FileKey]) -> None:
        if not keys or self.stopped:
            return
        if self.spec.mode == "batch":
            now = time.monotonic()
            if not self.batch:
                self._batch_first = now
            self._batch_last = now
            self.batch.extend(keys)
            return
        for key in keys:
            value = f"datastore://{self.datastore}/{key.path}"
            await self._submit(value, f"file:{key.path}", [key], None)

    def batch_deadline(self, quiet: float) -> float | None:
        if not self.batch:
            return None
        return min(self._batch_first + self.spec.max_wait, self._batch_last + quiet)

    async def flush_batch(self, quiet: float, *, busy: bool) -> None:
        """Start batch runs: full ones at once; the rest once the burst is quiet (no file
        arrived for ``quiet`` and none is settling) or has been held ``max_wait``."""
        now = time.monotonic()
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
        run_id = new_run_id(datetime.now(UTC))
        folder = self.root / BATCHES_DIR / run_id
        base = PurePosixPath(self.spec.path) if self.spec.path else None
        for rel in (key.path for key in keys):
            inside = PurePosixPath(rel).relative_to(base) if base else PurePosixPath(rel)
            link = folder / inside
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.is_symlink():
                os.symlink(self.root / rel, link)
        folder.mkdir(parents=True, exist_ok=True)
        value = f"datastore://{self.datastore}/{BATCHES_DIR}/{run_id}"
        await self._submit(value, f"files:{len(keys)}", keys, run_id)

    async def _submit(
        self, value: str, trigger: str, keys: list[FileKey], run_id: str | None
    ) -> None:
        parameters: dict[str, Any] = dict(self.schedule.parameters)
        if self.spec.data_path_parameter:
            parameters[self.spec.data_path_parameter] = value
        name = self.schedule.name
        try:
            pipeline = self.pipelines(self.schedule)
        except PipeschedError as error:
            log.error("file_run_refused", schedule=name, trigger=trigger, error=str(error))
            self.store.mark_files(name, keys, outcome="skipped", reason=str(error)[:500])
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
            log.error("file_run_refused", schedule=name, trigger=trigger, error=str(error))
            self.store.mark_files(name, keys, outcome="skipped", reason=str(error)[:500])
            return
        run = outcome.run
        log.info(
            "file_run_requested",
            schedule=name,
            trigger=trigger,
            outcome=outcome.outcome,
            run_id=run.id if run else None,
        )


def _snap(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)
