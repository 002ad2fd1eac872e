"""What each consumer of the store needs of it, one ``typing.Protocol`` per consumer.

A consumer annotates its store with the Protocol that names only the methods it calls, so a
reader sees what it touches, and a test can hand it an in-memory fake instead of a database.
``Store`` satisfies every Protocol here. Signatures are those of ``Store``'s methods.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from scheduler.core.runtimes import RunTimes
from scheduler.store.records import (
    FileKey,
    FireRecord,
    Metric,
    ModelRecord,
    Owner,
    RunDetail,
    RunRecord,
    ScheduleState,
    StepAttempt,
)

if TYPE_CHECKING:
    from scheduler.store.health import StoreHealth
    from scheduler.store.model_registry import VersionClaim

__all__ = [
    "DispatchStore",
    "ExecutorStore",
    "FileLedgerStore",
    "FireStore",
    "ModelStore",
    "RecoveryStore",
]


class ModelStore(Protocol):
    """``store.model_files.record_step_model``: record the version of a model a step claimed,
    or the next version when the store has that one already."""

    def register_model(
        self,
        name: str,
        files: VersionClaim,
        *,
        tags: Mapping[str, Any] | None = None,
        properties: Mapping[str, Any] | None = None,
        description: str | None = None,
        run_id: str | None = None,
        step: str | None = None,
    ) -> ModelRecord: ...
    def add_model(
        self,
        name: str,
        version: int,
        path: str,
        *,
        tags: Mapping[str, Any] | None = None,
        properties: Mapping[str, Any] | None = None,
        description: str | None = None,
        run_id: str | None = None,
        step: str | None = None,
    ) -> ModelRecord: ...


class ExecutorStore(ModelStore, Protocol):
    """``executor.run.RunExecutor``: a run's progress, step attempt by step attempt, and the
    models its steps registered."""

    def start_run(self, run_id: str, owner: Owner | None = None) -> None: ...
    def finish_run(self, run_id: str, status: str, reason: str | None = None) -> None: ...
    def begin_attempt(
        self,
        run_id: str,
        step: str,
        attempt: int,
        *,
        fingerprint: str | None = None,
        log_path: str | None = None,
        workdir: str | None = None,
    ) -> None: ...
    def set_attempt_process(
        self,
        run_id: str,
        step: str,
        attempt: int,
        *,
        pid: int,
        pgid: int,
        proc_start_ticks: int | None,
    ) -> None: ...
    def end_attempt(
        self,
        run_id: str,
        step: str,
        attempt: int,
        *,
        status: str,
        exit_code: int | None = None,
        reason: str | None = None,
        outputs: dict[str, str] | None = None,
    ) -> None: ...
    def mark_step(
        self, run_id: str, step: str, *, status: str, reason: str | None = None
    ) -> None: ...
    def record_reuse(
        self, run_id: str, step: str, *, reused_from: str, fingerprint: str, outputs: dict[str, str]
    ) -> None: ...
    def find_reusable(self, fingerprint: str) -> StepAttempt | None: ...
    def add_metrics(self, run_id: str, metrics: Sequence[Metric]) -> None: ...


class DispatchStore(ExecutorStore, Protocol):
    """``dispatch.dispatcher.Dispatcher`` and ``dispatch.submit.submit_run``: record a queued
    run (settling its fire or file claims), skip or close one, and hand the same store to the
    run's executor (hence everything ``ExecutorStore`` names)."""

    def ensure_pipeline_version(
        self,
        pipeline: str,
        content_hash: str,
        definition: dict[str, Any],
        version: str | None = None,
    ) -> int: ...
    def create_run(
        self,
        *,
        pipeline: str,
        content_hash: str,
        experiment: str,
        parameters: Mapping[str, Any],
        trigger: str,
        steps: Sequence[tuple[str, str, str]],
        version: str | None = None,
        schedule: str | None = None,
        owner: Owner | None = None,
        pipeline_version_id: int | None = None,
        fire: tuple[str, datetime] | None = None,
        run_id: str | None = None,
        file_fires: Sequence[tuple[str, str, int, int]] | None = None,
        times: RunTimes | None = None,
    ) -> RunRecord: ...
    def update_fire(
        self,
        schedule: str,
        nominal_time: datetime,
        *,
        outcome: str,
        reason: str | None = None,
        run_id: str | None = None,
    ) -> None: ...
    def mark_recovered(self, run_id: str) -> None: ...
    def get_run_detail(self, run_id: str) -> RunDetail: ...
    def mark_files(
        self, schedule: str, files: Sequence[FileKey], *, outcome: str, reason: str | None = None
    ) -> None: ...


class FireStore(Protocol):
    """``fires.handler.FireHandler``: claim a fire before its run, record missed and skipped
    fires, and resume the fires a dead daemon had claimed."""

    def claim_fire(
        self,
        schedule: str,
        nominal_time: datetime,
        *,
        outcome: str = ...,
        reason: str | None = None,
    ) -> bool: ...
    def record_fires(
        self, schedule: str, nominal_times: Iterable[datetime], *, outcome: str, reason: str | None
    ) -> int: ...
    def update_fire(
        self,
        schedule: str,
        nominal_time: datetime,
        *,
        outcome: str,
        reason: str | None = None,
        run_id: str | None = None,
    ) -> None: ...
    def fires_with_outcome(self, outcome: str) -> list[FireRecord]: ...
    def mark_recovered(self, run_id: str) -> None: ...
    def schedule_states(self) -> dict[str, ScheduleState]: ...
    @property
    def health(self) -> StoreHealth: ...


class FileLedgerStore(Protocol):
    """``fires.files``, ``fires.file_watcher`` and ``fires.file_runs``: the file-drop ledger."""

    def claim_files(self, schedule: str, files: Iterable[FileKey]) -> list[FileKey]: ...
    def known_files(self, schedule: str, files: Sequence[FileKey]) -> set[FileKey]: ...
    def claimed_files(self, schedule: str) -> list[FileKey]: ...
    def mark_files(
        self, schedule: str, files: Sequence[FileKey], *, outcome: str, reason: str | None = None
    ) -> None: ...
    def last_file(self, schedule: str) -> str | None: ...


class RecoveryStore(Protocol):
    """``daemon.recovery.recover``: find the runs a dead owner left open and close them."""

    def open_runs(self) -> list[RunRecord]: ...
    def get_run_detail(self, run_id: str) -> RunDetail: ...
    def running_attempts(self, run_id: str) -> list[StepAttempt]: ...
    def end_attempt(
        self,
        run_id: str,
        step: str,
        attempt: int,
        *,
        status: str,
        exit_code: int | None = None,
        reason: str | None = None,
        outputs: dict[str, str] | None = None,
    ) -> None: ...
    def mark_step(
        self, run_id: str, step: str, *, status: str, reason: str | None = None
    ) -> None: ...
    def finish_run(self, run_id: str, status: str, reason: str | None = None) -> None: ...
