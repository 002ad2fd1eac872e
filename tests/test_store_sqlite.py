"""What the store promises on SQLite in particular: connection settings, indexes, concurrency."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from scheduler.store import Store
from scheduler.store.queries import list_runs_statement


@pytest.fixture
def sqlite_store(tmp_path: Path):
    store = Store.open(f"sqlite:///{tmp_path}/state/pipesched.db")
    yield store
    store.close()


def test_open_creates_the_parent_directory(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path}/a/b/pipesched.db"):
        pass
    assert (tmp_path / "a" / "b" / "pipesched.db").is_file()


def test_every_connection_has_wal_foreign_keys_busy_timeout_and_full_sync(sqlite_store) -> None:
    # Two connections at once: the pool's second one must be set up as well as the first.
    with sqlite_store.engine.connect() as first, sqlite_store.engine.connect() as second:
        for conn in (first, second):
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


def test_deleting_a_run_deletes_its_steps_and_metrics(sqlite_store) -> None:
    run = sqlite_store.create_run(
        pipeline="p",
        content_hash="h",
        experiment="p",
        parameters={},
        trigger="manual",
        steps=[("a", "A", "command")],
    )
    with sqlite_store.engine.begin() as conn:
        conn.execute(text("DELETE FROM runs WHERE id = :id"), {"id": run.id})
        left = conn.execute(text("SELECT count(*) FROM step_runs")).scalar()
    assert left == 0


def query_plan(store: Store, **filters: object) -> str:
    statement = list_runs_statement(**filters)  # type: ignore[arg-type]
    sql = str(statement.compile(store.engine, compile_kwargs={"literal_binds": True}))
    with store.engine.connect() as conn:
        return "\n".join(row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))


def test_listing_a_pipelines_runs_uses_the_pipeline_index(sqlite_store) -> None:
    plan = query_plan(sqlite_store, pipeline="train", before="1m89g0zq51vd1")
    assert "USING INDEX ix_runs_pipeline_id (pipeline=? AND id<?)" in plan
    assert "TEMP B-TREE" not in plan  # the index already gives newest-first order


def test_listing_runs_by_status_uses_the_status_index(sqlite_store) -> None:
    assert "USING INDEX ix_runs_status_id (status=?)" in query_plan(
        sqlite_store, statuses=["running"]
    )
    assert "USING INDEX ix_runs_status_id (status=?)" in query_plan(
        sqlite_store, statuses=["queued", "running"]
    )


def test_concurrent_writers_wait_for_each_other_instead_of_failing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/pipesched.db"
    Store.open(url).close()
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def work() -> None:
        # A store (and so a connection pool) per thread, as separate processes would have.
        with Store.open(url) as store:
            start.wait()
            try:
                for _ in range(15):
                    run = store.create_run(
                        pipeline="p",
                        content_hash="h",
                        experiment="p",
                        parameters={},
                        trigger="manual",
                        steps=[("a", "A", "command")],
                    )
                    store.begin_attempt(run.id, "a", 1)
                    store.end_attempt(run.id, "a", 1, status="failed", exit_code=1)
                    store.begin_attempt(run.id, "a", 2)  # read-then-insert in one transaction
                    store.end_attempt(run.id, "a", 2, status="completed", exit_code=0)
            except BaseException as error:
                errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with Store.open(url) as store:
        assert len(store.list_runs(limit=0)) == 60
