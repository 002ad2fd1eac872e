"""The time a run stands for, in the store: runs recorded before the columns existed stand for
their creation once upgraded, and a run's times read back the same through the store and the
lean reader of ``pipesched runs``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic import command

from scheduler.core.runtimes import RunTimes
from scheduler.store import Store
from scheduler.store.engine import make_engine
from scheduler.store.migrate import alembic_config, current_revision
from scheduler.store.sqlite_reads import SqliteReads

FIRE = datetime(2027, 3, 28, 1, 0, tzinfo=UTC)
NIGHTLY = RunTimes(
    nominal_time=FIRE,
    interval_start=FIRE - timedelta(hours=23),
    interval_end=FIRE,
    zone="Europe/Berlin",
)


def _record(store: Store, trigger: str, times: RunTimes | None = None) -> str:
    return store.create_run(
        pipeline="p",
        content_hash="h",
        experiment="e",
        parameters={},
        trigger=trigger,
        steps=[("s", "s", "python_script")],
        times=times,
    ).id


def test_runs_from_before_the_columns_stand_for_their_creation(database_url: str) -> None:
    with Store.open(database_url) as store:
        old = _record(store, "manual")
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0012")
            assert current_revision(conn) == "0012"
    finally:
        engine.dispose()

    with Store.open(database_url) as store:  # opening upgrades it
        run = store.get_run_detail(old).run
        assert run.times == RunTimes(nominal_time=run.created_at)
        assert run.to_json()["nominal_time"] == run.to_json()["created_at"]
        scheduled = store.get_run_detail(_record(store, "schedule:nightly", NIGHTLY)).run
        assert scheduled.times == NIGHTLY


def test_the_lean_reader_reads_the_times_the_store_wrote(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/pipesched.db"
    with Store.open(url) as store:
        nightly = _record(store, "schedule:nightly", NIGHTLY)
        manual = _record(store, "manual")
        full = {run.id: run.times for run in store.list_runs(limit=0)}
    reads = SqliteReads.open(url)
    assert reads is not None
    try:
        lean = {run.id: run.times for run in reads.list_runs(limit=0)}
        assert reads.get_run_detail(nightly).run.to_json()["interval_start"] == (
            "2027-03-27T02:00:00.000000+00:00"
        )
    finally:
        reads.close()
    assert lean == full
    assert full[nightly] == NIGHTLY
    assert full[manual] is not None and full[manual].interval_start is None
