"""Migrations: honest against the models, cheap when at head, safe when processes race."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from scheduler.core.errors import PipeschedError
from scheduler.store import Store
from scheduler.store.engine import make_engine
from scheduler.store.migrate import HEAD_REVISION, alembic_config, current_revision
from scheduler.store.models import Base
from tests.conftest import wait_until

TABLES = {"pipeline_versions", "runs", "step_runs", "metrics"}


def test_head_revision_constant_is_alembics_only_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert heads == [HEAD_REVISION]


def test_upgraded_empty_database_matches_the_models(database_url: str) -> None:
    with Store.open(database_url) as store, store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
        assert current_revision(conn) == HEAD_REVISION


def test_downgrade_to_base_removes_every_table(database_url: str) -> None:
    Store.open(database_url).close()
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "base")
        with engine.connect() as conn:
            assert not TABLES & set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def test_database_from_a_newer_pipesched_is_refused_with_a_hint(database_url: str) -> None:
    Store.open(database_url).close()
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(PipeschedError, match="'9999'") as raised:
        Store.open(database_url)
    assert "newer pipesched" in (raised.value.hint or "")


def run_python(code: str, **kwargs: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, kwargs.values())],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_opening_a_database_at_head_does_not_import_alembic(database_url: str) -> None:
    Store.open(database_url).close()
    child = run_python(
        """
        import sys
        from scheduler.store import Store
        Store.open(sys.argv[1]).close()
        print("alembic" in sys.modules)
        """,
        url=database_url,
    )
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert out.strip() == "False"


def test_processes_opening_a_fresh_database_at_once_all_succeed(
    database_url: str, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    children = [
        run_python(
            """
            import sys, time
            from pathlib import Path
            from scheduler.store import Store
            Path(sys.argv[3]).touch()
            while not Path(sys.argv[2]).exists():  # start line: open at the same moment
                time.sleep(0.001)
            store = Store.open(sys.argv[1])
            store.create_run(pipeline="p", content_hash="h", experiment="p", parameters={},
                             trigger="manual", steps=[("a", "A", "command")])
            store.close()
            """,
            url=database_url,
            go=go,
            ready=tmp_path / f"ready-{index}",
        )
        for index in range(4)
    ]
    try:
        wait_until(lambda: all((tmp_path / f"ready-{i}").exists() for i in range(4)), timeout=60)
        go.touch()
        results = [child.communicate(timeout=60) for child in children]
    finally:
        for child in children:
            child.kill()
    assert [child.returncode for child in children] == [0] * 4, [err for _, err in results]
    with Store.open(database_url) as store:
        assert len(store.list_runs()) == 4
