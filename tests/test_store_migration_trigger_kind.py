"""Runs by trigger kind: a store from before the ``trigger_kind`` column gets it filled in
place, and the runs filter reads the same by kind and by whole trigger, new runs included."""

from __future__ import annotations

from pathlib import Path

from alembic import command

from scheduler.store import Store
from scheduler.store.engine import make_engine
from scheduler.store.migrate import HEAD_REVISION, alembic_config, current_revision
from scheduler.store.sqlite_reads import SqliteReads

TRIGGERS = ("manual", "schedule:nightly", "file:inbox/a:b.csv", "api", "schedule:weekly")


def _record(store: Store, trigger: str) -> str:
    return store.create_run(
        pipeline="p",
        content_hash="h",
        experiment="e",
        parameters={},
        trigger=trigger,
        steps=[("s", "s", "python_script")],
    ).id


def _filtered(store: Store, trigger: str) -> list[str]:
    return [run.id for run in store.list_runs(trigger=trigger, limit=0)]


def test_old_runs_get_their_trigger_kind_and_filter_like_new_ones(database_url: str) -> None:
    with Store.open(database_url) as store:
        old = {trigger: _record(store, trigger) for trigger in TRIGGERS}
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0009")
            assert current_revision(conn) == "0009"
    finally:
        engine.dispose()

    with Store.open(database_url) as store:  # opening upgrades it
        new = _record(store, "schedule:nightly")
        assert _filtered(store, "schedule") == [
            new,
            old["schedule:weekly"],
            old["schedule:nightly"],
        ]
        assert _filtered(store, "schedule:nightly") == [new, old["schedule:nightly"]]
        assert _filtered(store, "file") == [old["file:inbox/a:b.csv"]]
        assert _filtered(store, "file:inbox/a:b.csv") == [old["file:inbox/a:b.csv"]]
        assert _filtered(store, "manual") == [old["manual"]]
        assert _filtered(store, "sched") == []  # a kind is whole, not a prefix
        assert _filtered(store, "%") == []
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            assert current_revision(conn) == HEAD_REVISION
    finally:
        engine.dispose()


def test_the_lean_reader_filters_by_trigger_the_same_way(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/pipesched.db"
    with Store.open(url) as store:
        ids = {trigger: _record(store, trigger) for trigger in TRIGGERS}
    reads = SqliteReads.open(url)
    assert reads is not None
    try:
        assert [r.id for r in reads.list_runs(trigger="schedule", limit=0)] == [
            ids["schedule:weekly"],
            ids["schedule:nightly"],
        ]
        assert [r.id for r in reads.list_runs(trigger="api", limit=0)] == [ids["api"]]
    finally:
        reads.close()
