"""``store.patience``: what counts as an outage to wait out, and a write that waits one out on a
real SQLite file whose write lock another connection holds."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError

from scheduler.store import Store
from scheduler.store.engine import sqlite_path
from scheduler.store.errors import StoreUnavailable
from scheduler.store.patience import is_unavailable, patiently


def _sqlite_error(message: str) -> OperationalError:
    return OperationalError("INSERT ...", {}, sqlite3.OperationalError(message))


@pytest.mark.parametrize(
    "message",
    [
        "database is locked",
        "database or disk is full",
        "disk I/O error",
        "attempt to write a readonly database",
        "unable to open database file",
    ],
)
def test_sqlite_outages_are_waited_out(message):
    assert is_unavailable(_sqlite_error(message))


@pytest.mark.parametrize(
    "error",
    [
        _sqlite_error("no such table: runs"),
        IntegrityError("INSERT ...", {}, sqlite3.IntegrityError("UNIQUE constraint failed")),
        ValueError("a bug"),
    ],
)
def test_a_refusal_or_a_bug_is_not_an_outage(error):
    assert not is_unavailable(error)


def test_a_fenced_store_is_an_outage():
    assert is_unavailable(StoreUnavailable("daemon lock lost"))


@pytest.mark.slow
def test_a_write_held_by_a_lock_goes_through_once_the_lock_is_gone(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'p.db'}")
    database = sqlite_path(make_url(store.url))
    holder = sqlite3.connect(database, isolation_level=None, timeout=5, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    released = threading.Event()

    def release_later() -> None:
        time.sleep(6)  # past the store's busy_timeout (5 s): the first try fails
        holder.execute("ROLLBACK")
        released.set()

    threading.Thread(target=release_later, daemon=True).start()
    try:
        asyncio.run(patiently(store.set_override, "nightly", False))
        assert released.is_set()
        assert store.schedule_states()["nightly"].override is False
    finally:
        holder.close()
        store.close()


def test_a_refused_write_raises_at_once(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'p.db'}")
    try:
        with pytest.raises(Exception) as raised:
            asyncio.run(patiently(store.finish_run, "no-such-run", "completed"))
        assert not is_unavailable(raised.value)
    finally:
        store.close()
