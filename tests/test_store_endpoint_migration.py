"""A store from before versioned endpoints upgrades in place: each pipeline's published versions
become its endpoint's versions 0, 1, 2... in publishing order, the default stays the one it was,
and every schedule gets a stable id."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text

from scheduler.store import Store
from scheduler.store.engine import make_engine
from scheduler.store.migrate import alembic_config

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def test_published_versions_are_numbered_by_their_endpoint(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0006")
        with engine.begin() as conn:
            for version in ("1", "beta", "2"):
                conn.execute(
                    text(
                        "INSERT INTO published_pipelines (pipeline, version, content_hash,"
                        " snapshot_dir, published_at) VALUES ('train', :v, 'h', '/x', :t)"
                    ),
                    {"v": version, "t": T0},
                )
            conn.execute(
                text(
                    "INSERT INTO pipeline_endpoints (pipeline, default_version, updated_at)"
                    " VALUES ('train', 'beta', :t)"
                ),
                {"t": T0},
            )
            conn.execute(
                text(
                    "INSERT INTO schedules (name, source, registered_at) VALUES ('nightly',"
                    " 'file', :t)"
                ),
                {"t": T0},
            )
    finally:
        engine.dispose()
    with Store.open(database_url) as store:
        endpoint = store.get_endpoint("train")
        assert [(v.number, v.version) for v in endpoint.versions] == [
            (0, "1"),
            (1, "beta"),
            (2, "2"),
        ]
        assert endpoint.default_number == 1 and len(endpoint.endpoint_id) == 32
        assert store.get_default_version("train") == "beta"
        assert store.schedule_states()["nightly"].schedule_id
        # Publishing on goes on numbering.
        store.add_published(
            pipeline="train", version="3", description=None, content_hash="h", snapshot_dir="/y"
        )
        assert store.get_endpoint("train").versions[-1].number == 3
