"""The tests' TCP proxy between a client and PostgreSQL: a real psycopg connection through it
works, dies when the proxy is cut, and a new one works once it is restored. A blackhole leaves
the server's session alive (the server has not noticed the cut); a reset ends it."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from tests.conftest import POSTGRES_URL_ENV, wait_until
from tests.tcp_proxy import TcpProxy


@pytest.fixture
def server_url(postgres_admin: Engine | None) -> str:
    if postgres_admin is None:
        pytest.skip(f"PostgreSQL: set {POSTGRES_URL_ENV} to a server URL (.ci/run does)")
    return os.environ[POSTGRES_URL_ENV]


@pytest.fixture
def proxy(server_url: str) -> Iterator[TcpProxy]:
    with TcpProxy.for_url(server_url) as proxy:
        yield proxy


def connect(proxy: TcpProxy, server_url: str, timeout: int = 5) -> psycopg.Connection:
    url = make_url(proxy.url(server_url))
    return psycopg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        dbname=url.database,
        connect_timeout=timeout,
        autocommit=True,
    )


def backend_pid(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


def session_alive(admin: Engine, pid: int) -> bool:
    with admin.connect() as conn:
        found = conn.execute(text("SELECT 1 FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid})
        return found.first() is not None


def test_a_connection_through_the_proxy_dies_on_a_reset_and_a_new_one_works_after_restore(
    proxy: TcpProxy, server_url: str, postgres_admin: Engine
):
    conn = connect(proxy, server_url)
    pid = backend_pid(conn)
    assert conn.execute("SELECT 41 + 1").fetchone() == (42,)

    proxy.cut("reset")
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")
    with pytest.raises(psycopg.OperationalError):
        connect(proxy, server_url)
    # The server saw its end of the connection go too.
    wait_until(lambda: not session_alive(postgres_admin, pid), timeout=10)

    proxy.restore()
    again = connect(proxy, server_url)
    try:
        assert backend_pid(again) != pid
        assert again.execute("SELECT 'back'").fetchone() == ("back",)
    finally:
        again.close()
        conn.close()


def test_a_blackhole_stalls_the_connection_while_the_server_keeps_its_session(
    proxy: TcpProxy, server_url: str, postgres_admin: Engine
):
    conn = connect(proxy, server_url)
    pid = backend_pid(conn)
    outcome: list[BaseException | tuple] = []

    def query() -> None:
        try:
            outcome.append(conn.execute("SELECT 1").fetchone() or ())
        except psycopg.Error as exc:
            outcome.append(exc)

    proxy.cut("blackhole")
    stalled = threading.Thread(target=query, daemon=True)
    stalled.start()
    stalled.join(timeout=1)
    assert stalled.is_alive() and not outcome, "a query answered through a blackhole"
    assert session_alive(postgres_admin, pid)
    with pytest.raises(psycopg.OperationalError):
        connect(proxy, server_url, timeout=1)

    proxy.restore()  # the stalled connection is reset, so its query fails
    stalled.join(timeout=10)
    assert len(outcome) == 1 and isinstance(outcome[0], psycopg.OperationalError)
    fresh = connect(proxy, server_url)
    try:
        assert fresh.execute("SELECT 2").fetchone() == (2,)
    finally:
        fresh.close()
        conn.close()


def test_a_cut_armed_for_a_transaction_leaves_the_server_holding_it_open(
    proxy: TcpProxy, server_url: str, postgres_admin: Engine
):
    conn = connect(proxy, server_url)
    pid = backend_pid(conn)
    conn.autocommit = False
    proxy.cut_in_transaction("blackhole")
    assert proxy.mode is None  # nothing cut while the client is outside a transaction
    finished: list[object] = []

    def in_a_transaction() -> None:
        try:
            conn.execute("SELECT 1")  # BEGIN; SELECT: the server answers "in transaction"
            conn.commit()  # never arrives
            finished.append("committed")
        except psycopg.Error as exc:
            finished.append(exc)

    worker = threading.Thread(target=in_a_transaction, daemon=True)
    worker.start()
    proxy.wait_cut(timeout=10)
    assert proxy.mode == "blackhole"

    def state() -> str | None:
        with postgres_admin.connect() as admin:
            found = admin.execute(
                text("SELECT state FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            )
            return found.scalar()

    wait_until(lambda: state() == "idle in transaction", timeout=10)
    worker.join(timeout=0.5)
    assert worker.is_alive() and not finished, "the COMMIT went through the cut"
    proxy.restore()
    worker.join(timeout=10)
    assert len(finished) == 1 and isinstance(finished[0], psycopg.OperationalError)
    conn.close()


def test_the_proxy_counts_and_closes_its_connections(proxy: TcpProxy, server_url: str):
    first, second = connect(proxy, server_url), connect(proxy, server_url)
    assert proxy.open_connections() == 2 and proxy.accepted == 2
    first.close()
    wait_until(lambda: proxy.open_connections() == 1, timeout=5)
    proxy.close()
    assert proxy.open_connections() == 0
    with pytest.raises(psycopg.OperationalError):
        second.execute("SELECT 1")
    second.close()
