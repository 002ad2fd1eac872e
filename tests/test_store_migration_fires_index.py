"""The index of fires by schedule and outcome: a store from before it is upgraded in place, and
a file-drop schedule's ledger reads the same through it."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from scheduler.store import Store
from scheduler.store.engine import make_engine
from scheduler.store.migrate import HEAD_REVISION, alembic_config, current_revision
from scheduler.store.records import FileKey

INDEX = "ix_fires_schedule_outcome_updated_at_id"


def _fire_indexes(url: str) -> tuple[str | None, set[str]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            names = {index["name"] for index in inspect(conn).get_indexes("fires")}
            return current_revision(conn), {name for name in names if name}
    finally:
        engine.dispose()


def test_a_store_from_before_the_index_gets_it_and_keeps_its_ledger(database_url: str) -> None:
    files = [FileKey(f"inbox/part-{i}.csv", 100 + i, 1_000 + i) for i in range(4)]
    with Store.open(database_url) as store:
        assert store.claim_files("drops", files) == files
        store.mark_files("drops", files[:2], outcome="started")
        store.mark_files("drops", files[2:3], outcome="skipped", reason="pipeline gone")
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0008")
    finally:
        engine.dispose()
    revision, indexes = _fire_indexes(database_url)
    assert revision == "0008" and INDEX not in indexes

    with Store.open(database_url) as store:  # opening upgrades it
        assert store.last_file("drops") in {files[0].path, files[1].path}
        assert store.claimed_files("drops") == files[3:]
        assert store.count_file_fires("drops", outcome="skipped") == 1
    revision, indexes = _fire_indexes(database_url)
    assert revision == HEAD_REVISION and INDEX in indexes
