"""Rolling upgrades of standby daemons: only a daemon that leads migrates the shared store, and
a daemon that knows only an older schema than the store's refuses to lead, naming the version
the other daemons run. A real daemon on a real PostgreSQL database."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from scheduler.store import Store
from scheduler.store.engine import make_engine
from scheduler.store.migrate import HEAD_REVISION, alembic_config, current_revision
from tests.conftest import wait_until
from tests.projects import make_project

pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize("database_url", ["postgresql"], indirect=True),
]
HA = {"mode": "standby", "lease": "3s", "heartbeat": "0.5s"}


def revision_of(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return current_revision(conn)
    finally:
        engine.dispose()


def test_a_daemon_that_takes_the_lead_migrates_an_older_store(
    tmp_path: Path, database_url: str, daemons
) -> None:
    with Store.open(database_url):
        pass
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0010")  # before leadership existed
    finally:
        engine.dispose()
    project = make_project(tmp_path / "p", database_url=database_url, ha=HA)
    daemon = daemons(project).start()
    (led,) = wait_until(lambda: daemon.events("ha_leader"), timeout=30)
    assert led["epoch"] == 1
    assert revision_of(database_url) == HEAD_REVISION


def test_a_daemon_older_than_the_store_refuses_to_lead_and_names_the_version(
    tmp_path: Path, database_url: str, daemons
) -> None:
    newer = f"{int(HEAD_REVISION) + 1:04d}"
    # What a newer pipesched leaves: its revision, and its heartbeat.
    with Store.open(database_url) as store, store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": newer})
        conn.execute(
            text(
                "INSERT INTO daemon_heartbeats (name, host, pid, started_at, role, epoch, "
                "heartbeat_at, lease_seconds, schema_revision, version, api_url) VALUES "
                "('other:1:t', 'other', 1, now(), 'standby', 0, now(), 3, :v, '9.9.0', NULL)"
            ),
            {"v": newer},
        )
    project = make_project(tmp_path / "p", database_url=database_url, ha=HA)
    daemon = daemons(project).start(wait_ready=False)
    assert daemon.wait_exit(timeout=30) == 1
    (refused,) = daemon.events("ha_schema_too_new")
    assert f"newer schema than this pipesched knows ({HEAD_REVISION})" in refused["error"]
    assert "pipesched 9.9.0" in refused["error"]
    assert "upgrade this daemon to pipesched 9.9.0" in refused["hint"]
    assert revision_of(database_url) == newer  # nothing migrated, nothing led
    with Store.open(database_url, migrate=False) as store:
        assert store.leadership().epoch == 0
