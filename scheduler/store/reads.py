"""What a command line reads of the run history, and how it opens it cheaply.

``HistoryReads`` is what ``SqliteReads`` (the standard library on a SQLite file) and the
SQLAlchemy ``Store`` both offer; ``open_history`` gives the first when it can, so a read command
never pays for the ORM on the default store, and the second otherwise (PostgreSQL, a database
to create or migrate).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from scheduler.store.records import (
    FireRecord,
    Metric,
    ModelRecord,
    RunDetail,
    RunRecord,
    ScheduleState,
)
from scheduler.store.sqlite_reads import SqliteReads


class HistoryReads(Protocol):
    """Runs, metrics, fire records, schedule states and models, as records."""

    def resolve_run_id(self, prefix: str) -> str: ...
    def get_run(self, run_id: str) -> RunRecord: ...
    def get_run_detail(self, run_id: str) -> RunDetail: ...
    def list_runs(
        self,
        *,
        pipeline: str | None = None,
        statuses: Sequence[str] = (),
        limit: int = 20,
        before: str | None = None,
        experiment: str | None = None,
        schedule: str | None = None,
        trigger: str | None = None,
    ) -> list[RunRecord]: ...
    def run_metrics(self, run_ids: Sequence[str]) -> dict[str, list[Metric]]: ...
    def list_fires(self, schedule: str | None = None, *, limit: int = 20) -> list[FireRecord]: ...
    def schedule_states(self) -> dict[str, ScheduleState]: ...
    def get_model(self, name: str, version: int | None = None) -> ModelRecord: ...
    def list_models(
        self,
        name: str | None = None,
        *,
        tags: Mapping[str, str | None] | None = None,
        properties: Mapping[str, str | None] | None = None,
        run_id: str | None = None,
        latest: bool = False,
    ) -> list[ModelRecord]: ...
    def close(self) -> None: ...


def open_history(url: str) -> HistoryReads:
    """The reads of the database at ``url``: plain ``sqlite3`` on a SQLite file at the current
    schema, else the full store (which creates or migrates the database first). Close it."""
    lean = SqliteReads.open(url)
    if lean is not None:
        return lean
    from scheduler.store.store import Store  # lazy: the ORM only when the lean reads cannot

    return Store.open(url)
