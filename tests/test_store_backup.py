"""Backups and upgrades of the store: ``pipesched backup`` makes a private, whole, consistent copy
and never writes over a file by accident; a store migrated from an older schema keeps every run
and leaves a copy at its old revision beside it (the newest few kept); a store that a newer
pipesched migrated is refused by name and left as it was."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import stat
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import make_url

from scheduler import __version__
from scheduler.cli import main
from scheduler.store import Store
from scheduler.store.backup import (
    KEEP_PRE_MIGRATION_BACKUPS,
    copy_database,
    pre_migration_backups,
    pre_migration_path,
    read_copy,
)
from scheduler.store.engine import make_engine, sqlite_path
from scheduler.store.migrate import HEAD_REVISION, SchemaTooNew, alembic_config, current_revision
from tests.projects import Project, make_project

PREVIOUS_REVISION = "0011"  # the schema of the pipesched before retention, alerts and backups


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


def pipesched(project: Project, *args: str) -> Result:
    """The real entry point (``main``) in this process: the same exit codes and error lines,
    without a second of interpreter start-up per call."""
    runner = CliRunner()
    with runner.isolation(env={"NO_COLOR": "1"}) as (out, err, _):
        try:
            main([*args, "-c", str(project.config_path)])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        return Result(code, out.getvalue().decode(), err.getvalue().decode())


def record_runs(store: Store, count: int) -> list[str]:
    return [
        store.create_run(
            pipeline="p",
            content_hash="h",
            experiment="p",
            parameters={"n": index},
            trigger="manual",
            steps=[("s", "s", "python_script")],
        ).id
        for index in range(count)
    ]


def database_of(project: Project) -> Path:
    path = sqlite_path(make_url(project.config().database_url))
    assert path is not None
    return path


def integrity(path: Path) -> str:
    connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return connection.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        connection.close()


def run_ids_in(path: Path) -> set[str]:
    connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return {row[0] for row in connection.execute("SELECT id FROM runs")}
    finally:
        connection.close()


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def downgrade(url: str, revision: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), revision)
    finally:
        engine.dispose()


def test_backup_writes_a_private_whole_copy_and_never_replaces_a_file_unasked(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path / "p")
    with project.store() as store:
        ids = set(record_runs(store, 5))
    backups = tmp_path / "backups"

    into_folder = pipesched(project, "backup", f"{backups}/", "--json")
    assert into_folder.returncode == 0, into_folder.stderr
    report = json.loads(into_folder.stdout)
    copy = Path(report["path"])
    assert copy.parent == backups and copy.name.startswith("pipesched-")
    assert report["runs"] == 5 and report["schema_revision"] == HEAD_REVISION
    assert report["bytes"] == copy.stat().st_size
    assert integrity(copy) == "ok" and run_ids_in(copy) == ids
    assert mode_of(copy) == 0o600
    assert not list(backups.glob(".*"))  # no temporary file left behind

    named = backups / "nightly.db"
    first = pipesched(project, "backup", str(named))
    assert first.returncode == 0, first.stderr
    assert f"to {named}: " in first.stdout and "5 runs" in first.stdout
    with project.store() as store:
        record_runs(store, 1)
    again = pipesched(project, "backup", str(named))
    assert again.returncode == 1
    assert again.stderr.strip() == (
        f"error: {named} exists (pass --force to replace it, or name another file or a folder)"
    )
    assert len(run_ids_in(named)) == 5  # untouched
    forced = pipesched(project, "backup", str(named), "--force")
    assert forced.returncode == 0, forced.stderr
    assert len(run_ids_in(named)) == 6 and mode_of(named) == 0o600

    itself = pipesched(project, "backup", str(database_of(project)), "--force")
    assert itself.returncode == 1 and "is the store itself" in itself.stderr


def test_a_postgresql_store_is_told_the_pg_dump_command_without_its_password(
    tmp_path: Path,
) -> None:
    url = "postgresql+psycopg://sched:s3cret@db.example:5433/pipesched"
    project = make_project(tmp_path / "p", database_url=url)
    refused = pipesched(project, "backup", str(tmp_path / "store.dump"))
    assert refused.returncode == 1 and refused.stdout == ""
    assert "s3cret" not in refused.stderr
    assert (
        f"pg_dump --format=custom --file={tmp_path / 'store.dump'} "
        "--dbname=postgresql://sched@db.example:5433/pipesched"
    ) in refused.stderr
    assert "$PGPASSWORD or ~/.pgpass" in refused.stderr


def test_a_store_from_the_previous_schema_keeps_every_run_and_a_copy_at_that_revision(
    tmp_path: Path,
) -> None:
    database = tmp_path / "var" / "pipesched.db"
    url = f"sqlite:///{database}"
    with Store.open(url) as store:
        ids = set(record_runs(store, 20))
    downgrade(url, PREVIOUS_REVISION)
    # Copies left by earlier upgrades: only the newest few stay.
    long_ago = datetime(2026, 1, 1, tzinfo=UTC)
    for days in range(KEEP_PRE_MIGRATION_BACKUPS + 1):
        older = pre_migration_path(database, "0009", long_ago + timedelta(days=days))
        copy_database(database, older)

    with Store.open(url) as store:
        assert {run.id for run in store.list_runs(limit=0)} == ids
        with store.engine.connect() as conn:
            assert current_revision(conn) == HEAD_REVISION

    kept = pre_migration_backups(database)
    assert len(kept) == KEEP_PRE_MIGRATION_BACKUPS
    newest = kept[0]
    assert newest.name.startswith(f"pipesched.db.pre-{HEAD_REVISION}-")
    assert mode_of(newest) == 0o600
    assert read_copy(newest) == (PREVIOUS_REVISION, 20)
    assert integrity(newest) == "ok" and run_ids_in(newest) == ids


def test_a_fresh_store_and_one_at_head_get_no_copy(tmp_path: Path) -> None:
    database = tmp_path / "pipesched.db"
    Store.open(f"sqlite:///{database}").close()
    Store.open(f"sqlite:///{database}").close()
    assert pre_migration_backups(database) == []


def stamp_newer(url: str, revision: str, version: str) -> None:
    """What a newer pipesched leaves behind: its schema revision and its version."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
            conn.execute(
                text("UPDATE store_info SET value = :v WHERE key = 'migrated_by'"),
                {"v": version},
            )
    finally:
        engine.dispose()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_store_a_newer_pipesched_migrated_is_refused_by_name_and_left_as_it_was(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path / "p")
    database = database_of(project)
    url = project.config().database_url
    with project.store() as store:
        record_runs(store, 3)
    # The copy the newer pipesched took before migrating: the way back.
    way_back = pre_migration_path(database, "0017", datetime.now(UTC))
    copy_database(database, way_back)
    newer = f"{int(HEAD_REVISION) + 1:04d}"
    stamp_newer(url, newer, "9.9.0")
    before = digest(database)

    with pytest.raises(SchemaTooNew) as refused:
        Store.open(url)
    assert refused.value.message == (
        f"the store is at schema revision '{newer}', newer than this pipesched "
        f"({__version__}, schema {HEAD_REVISION}) knows; pipesched 9.9.0 migrated it"
    )
    assert refused.value.hint is not None
    assert refused.value.hint.startswith(
        "it was written by a newer pipesched: install pipesched 9.9.0 or later, or go back"
    )
    assert f"copy {way_back} over {database}" in refused.value.hint

    for args in (("runs",), ("runs", "--json"), ("backup", str(tmp_path / "b.db"))):
        result = pipesched(project, *args)
        if args[0] == "backup":  # a copy is always safe to take, whatever the schema
            assert result.returncode == 0, result.stderr
            continue
        assert result.returncode == 1 and result.stdout == ""
        (line,) = result.stderr.splitlines()
        assert line == f"error: {refused.value}"
    assert digest(database) == before
    assert read_copy(database) == (newer, 3)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_migrating_a_postgresql_store_names_the_pg_dump_to_take_and_never_waits(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with Store.open(database_url) as store:
        ids = set(record_runs(store, 2))
    downgrade(database_url, PREVIOUS_REVISION)
    capsys.readouterr()
    with Store.open(database_url) as store:
        assert {run.id for run in store.list_runs(limit=0)} == ids
    said = capsys.readouterr()
    assert said.out == ""
    (line,) = [json.loads(line) for line in said.err.splitlines() if "store_migrating" in line]
    assert (line["from_revision"], line["to_revision"]) == (PREVIOUS_REVISION, HEAD_REVISION)
    assert line["backup"] is None
    assert "pg_dump --format=custom" in line["hint"]
    assert make_url(database_url).database in line["hint"]
