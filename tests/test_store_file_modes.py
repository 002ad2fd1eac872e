"""Private by default: outside systemd (no ``StateDirectory=`` to set modes), the state
directory is created 0700, and the database, its -wal and -shm and every step log 0600,
whatever the umask. The umask here is the usual 0o022, under which the files used to be 0644."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler.store import Store
from tests.projects import make_project


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_sqlite_store_is_private(tmp_path: Path, umask_022):
    state_dir = tmp_path / "var"
    db = state_dir / "pipesched.db"
    with Store.open(f"sqlite:///{db}") as store:
        store.register_schedules({"nightly": "file"})  # a write: the WAL and its index exist
        assert (state_dir / "pipesched.db-wal").exists()
        modes = {p.name: mode(p) for p in state_dir.iterdir()}
        assert {"pipesched.db", "pipesched.db-wal", "pipesched.db-shm"} <= set(modes)
        assert modes == dict.fromkeys(modes, 0o600)
    assert mode(state_dir) == 0o700


def test_an_existing_folder_keeps_its_mode(tmp_path: Path, umask_022):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    with Store.open(f"sqlite:///{shared / 'pipesched.db'}"):
        pass
    assert mode(shared) == 0o755  # the owner chose it
    assert mode(shared / "pipesched.db") == 0o600


def test_pipesched_run_leaves_nothing_readable_by_others(tmp_path: Path, umask_022):
    project = make_project(tmp_path)
    project.pipeline(
        "hello",
        "steps:\n  greet: {type: python_script, script: greet.py}\n",
        {"greet.py": "print('hello')\n"},
    )
    result = project.cli("run", "hello", "--json")  # the subprocess inherits the umask
    assert result.returncode == 0, result.stderr
    run_id = json.loads(result.stdout)["id"]
    assert mode(project.state_dir) == 0o700
    logs = list((project.state_dir / "runs" / run_id).rglob("*.log"))
    assert logs, "the step wrote no log"
    assert {log.name: mode(log) for log in logs} == {log.name: 0o600 for log in logs}
    for name in ("pipesched.db", "pipesched.db-wal", "pipesched.db-shm"):
        path = project.state_dir / name
        if path.exists():  # -wal and -shm go at the last close
            assert mode(path) == 0o600, name
    assert (project.state_dir / "pipesched.db").exists()
