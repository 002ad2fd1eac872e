"""Every file name is handled: a name that is not UTF-8 (or holds a newline, or begins with
``-``) dropped into a watched folder is handled exactly once, its step receives the file's real
bytes, and ``fires``/``schedules --json`` show the name escaped. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml
from alembic import command
from sqlalchemy import text

from scheduler.core.pathnames import escape_name, unescape_name
from scheduler.store import Store
from scheduler.store.engine import make_engine
from scheduler.store.migrate import alembic_config
from scheduler.store.records import FileKey
from tests.conftest import wait_until
from tests.file_drops_harness import Service, file_drop_project, on_change
from tests.projects import make_project

# The step records the bytes of the path its argv received and the file's content.
RECORD = (
    "import os, sys; p = os.fsencode(sys.argv[1]); out = sys.argv[2]; "
    "open(os.path.join(out, p.hex()), 'wb').write(open(p, 'rb').read())"
)

ARGS = ["${{parameters.input_path}}", "${{parameters.out}}"]

MOVED_IN = b"\xff\xfe.csv"
WRITTEN = b"w\xe9\xff-in-place.csv"  # Latin-1 bytes: not UTF-8
NEWLINE = b"new\nline.csv"
DASHED = b"-rf.csv"
NAMES = [MOVED_IN, WRITTEN, NEWLINE, DASHED]


@pytest.fixture
def project(tmp_path: Path, database_url: str):
    project = file_drop_project(tmp_path / "p", database_url=database_url)
    project.pipeline(
        "drops",
        {
            "parameters": {"input_path": {"type": "path"}, "out": {"type": "str"}},
            "steps": {
                "s": {
                    "type": "command",
                    "command": [sys.executable, "-c", RECORD, *ARGS],
                    "allow_reuse": False,
                }
            },
        },
    )
    (project.datastore / "inbox").mkdir()
    (project.datastore / "staging").mkdir()
    return project


def schedule(out: Path) -> dict:
    spec = on_change(settle="0.2s")
    spec["parameters"] = {"out": str(out)}
    return spec


def drop_all(project) -> dict[bytes, bytes]:
    """Move two names in, write two in place; the content of each, by name."""
    inbox = os.fsencode(project.datastore / "inbox")
    staging = os.fsencode(project.datastore / "staging")
    contents = {name: b"content of " + name for name in NAMES}
    for name in (MOVED_IN, DASHED):
        with open(os.path.join(staging, name), "wb") as handle:
            handle.write(contents[name])
        os.rename(os.path.join(staging, name), os.path.join(inbox, name))
    for name in (WRITTEN, NEWLINE):
        with open(os.path.join(inbox, name), "wb") as handle:
            handle.write(contents[name])
    return contents


def test_names_that_are_not_utf8_are_stored_escaped_and_read_back_exactly():
    for name in [*NAMES, b"a\\b.csv", b"a\\xff.csv", "é日本.csv".encode(), b"\xc2\x85.csv"]:
        text = escape_name(os.fsdecode(name))
        text.encode("utf-8")  # valid UTF-8: every store, JSON and terminal takes it
        assert "\n" not in text and "\x00" not in text
        assert os.fsencode(unescape_name(text)) == name
    assert escape_name(os.fsdecode(MOVED_IN)) == "\\xff\\xfe.csv"
    assert escape_name("é.csv") == "é.csv"


def test_every_name_is_handled_once_shown_escaped_and_not_again_after_a_restart(
    project, tmp_path: Path
):
    out = tmp_path / "received"
    out.mkdir()
    service = Service(project, schedule(out)).start()
    try:
        # Dropped once the watch is live, so the observer's move and close events count them.
        wait_until(lambda: not service.watcher()._rescan, timeout=10)
        contents = drop_all(project)
        wait_until(lambda: len(service.runs()) >= len(NAMES), timeout=30, interval=0.1)
        wait_until(service.finished, timeout=30, interval=0.1)
        assert {r.status for r in service.runs()} == {"completed"}
        ledger = service.ledger()
        assert sorted(f.path for f in ledger) == sorted(
            "inbox/" + escape_name(os.fsdecode(n)) for n in NAMES
        )
        assert {f.outcome for f in ledger} == {"started"}
    finally:
        service.close()

    # Each step received the file's real path, bytes for bytes, and read the file.
    inbox = os.fsencode(os.path.realpath(project.datastore / "inbox"))
    received = {bytes.fromhex(p.name): p.read_bytes() for p in out.iterdir()}
    assert received == {os.path.join(inbox, n): contents[n] for n in NAMES}

    # A restart rescans the folder: nothing is handled again.
    again = Service(project, schedule(out)).start()
    try:
        wait_until(lambda: again.status()["pending"] == 0, timeout=10, interval=0.05)
        again.call(again.watcher()._scan())  # one more full scan, awaited
        assert again.status()["pending"] == 0
        assert len(again.runs()) == len(NAMES)
        assert len(again.ledger()) == len(NAMES)
    finally:
        again.close()

    shown = "inbox/\\xff\\xfe.csv"
    done = project.cli("fires", "drops", "--json")
    assert done.returncode == 0, done.stderr
    fires = json.loads(done.stdout.encode("utf-8"))  # valid UTF-8 JSON
    paths = [f.get("path") for f in fires]
    assert shown in paths and "inbox/new\\x0aline.csv" in paths and "inbox/-rf.csv" in paths
    table = project.cli("fires", "drops")
    assert table.returncode == 0, table.stderr
    assert shown in table.stdout and "new\\x0aline" in table.stdout

    project.schedules(yaml.safe_dump({"schedules": [schedule(out)]}))
    done = project.cli("schedules", "--json")
    assert done.returncode == 0, done.stderr
    (summary,) = json.loads(done.stdout.encode("utf-8"))
    assert summary["watch"]["last_file"] in {"inbox/" + escape_name(os.fsdecode(n)) for n in NAMES}


class RefusingStore:
    """The real store, except that it refuses to claim a file whose path holds ``marker`` while
    ``refusing`` (a row the database will not take)."""

    def __init__(self, store, marker: str) -> None:
        self.store, self.marker, self.refusing = store, marker, True

    def __getattr__(self, name: str):
        return getattr(self.store, name)

    def claim_files(self, schedule, files):
        files = list(files)
        if self.refusing and any(self.marker in key.path for key in files):
            raise RuntimeError("the database refused the row")
        return self.store.claim_files(schedule, files)


def test_a_file_that_cannot_be_handled_is_logged_counted_and_shown(project, tmp_path, capfd):
    out = tmp_path / "received"
    out.mkdir()
    inbox = project.datastore / "inbox"
    service = Service(project, schedule(out))
    refusing = service.store = RefusingStore(service.store, "\\xfe")
    service.start()
    try:
        wait_until(lambda: not service.watcher()._rescan, timeout=10)
        secret = tmp_path / "secret.csv"
        secret.write_text("outside\n")
        os.symlink(secret, os.path.join(os.fsencode(inbox), b"out\xff-side.csv"))
        for name in (MOVED_IN, b"fine.csv"):
            staged = os.path.join(os.fsencode(project.datastore / "staging"), name)
            with open(staged, "wb") as handle:
                handle.write(b"x\n")
            os.rename(staged, os.path.join(os.fsencode(inbox), name))

        # The refused claim holds back neither the other file nor itself unseen.
        wait_until(lambda: service.triggers() == ["file:inbox/fine.csv"], timeout=15)
        wait_until(lambda: service.status()["unhandled"] == 1, timeout=10)
        assert service.status()["pending"] >= 1
        logged = capfd.readouterr().out
        assert "file_not_handled" in logged and "inbox/\\xff\\xfe.csv" in logged

        # The symlink leading outside: never run, recorded skipped with the reason.
        refused = "inbox/out\\xff-side.csv"

        def settled():
            return [f for f in service.ledger() if f.path == refused and f.outcome == "skipped"]

        (row,) = wait_until(settled, timeout=10)
        assert "leads outside datastore" in (row.reason or "")

        # The store takes the row again: the file is handled, once.
        refusing.refusing = False
        wait_until(lambda: len(service.runs()) == 2, timeout=15)
        wait_until(lambda: service.status()["unhandled"] == 0, timeout=10)
        wait_until(service.finished, timeout=30)
        assert service.triggers() == ["file:inbox/\\xff\\xfe.csv", "file:inbox/fine.csv"]
    finally:
        service.close()

    project.schedules(yaml.safe_dump({"schedules": [schedule(out)]}))
    done = project.cli("schedules", "--json")
    assert done.returncode == 0, done.stderr
    (summary,) = json.loads(done.stdout)
    assert summary["watch"]["unhandled"] == 1  # the symlink leading outside
    table = project.cli("schedules")
    assert table.returncode == 0, table.stderr
    assert "(1 not handled)" in " ".join(table.stdout.split()), table.stdout
    fires = json.loads(project.cli("fires", "drops", "--json").stdout)
    assert [f["outcome"] for f in fires if f.get("path") == refused] == ["skipped"]


LIST = (
    "import os, sys; p = os.fsencode(sys.argv[1]); out = sys.argv[2]; "
    "names = sorted(os.listdir(p)); "
    "open(os.path.join(out, 'listed'), 'wb').write(b'\\0'.join(names)); "
    "open(os.path.join(out, 'read'), 'wb').write(b''.join(open(os.path.join(p, n), 'rb').read() "
    "for n in names))"
)


def test_a_batch_run_gets_a_folder_holding_the_real_names(project, tmp_path):
    project.pipeline(
        "drops",
        {
            "parameters": {"input_path": {"type": "path"}, "out": {"type": "str"}},
            "steps": {
                "s": {
                    "type": "command",
                    "command": [sys.executable, "-c", LIST, *ARGS],
                    "allow_reuse": False,
                }
            },
        },
    )
    out = tmp_path / "received"
    out.mkdir()
    spec = on_change(mode="batch", settle="1s")  # one burst: one run
    spec["parameters"] = {"out": str(out)}
    service = Service(project, spec).start()
    try:
        wait_until(lambda: not service.watcher()._rescan, timeout=10)
        inbox = os.fsencode(project.datastore / "inbox")
        for name in (MOVED_IN, WRITTEN):
            with open(os.path.join(inbox, name), "wb") as handle:
                handle.write(name)
        wait_until(lambda: service.runs() and service.finished(), timeout=30, interval=0.1)
        (run,) = service.runs()
        assert run.status == "completed" and run.trigger == "files:2"
    finally:
        service.close()
    assert (out / "listed").read_bytes().split(b"\0") == sorted([MOVED_IN, WRITTEN])
    assert (out / "read").read_bytes() == b"".join(sorted([MOVED_IN, WRITTEN]))


def test_names_stored_raw_before_the_upgrade_are_escaped_by_it(database_url: str):
    """A ledger written before names were escaped held ``a\\b.csv`` and newlines raw; after the
    upgrade the watcher's escaped key finds them, so those files are not handled again."""
    raw = ["inbox/a\\b.csv", "inbox/a\\\\b.csv", "inbox/new\nline.csv", "inbox/plain.csv"]
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0004")
        with engine.begin() as conn:
            for path in raw:
                conn.execute(
                    text(
                        "INSERT INTO fires (schedule, path, size, mtime_ns, outcome,"
                        " created_at, updated_at) VALUES ('drops', :path, 1, 2, 'started',"
                        " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                    ),
                    {"path": path},
                )
    finally:
        engine.dispose()
    with Store.open(database_url) as store:
        keys = [FileKey(escape_name(path), 1, 2) for path in raw]
        assert store.known_files("drops", keys) == set(keys)
        assert sorted(f.path for f in store.list_file_fires("drops")) == sorted(
            k.path for k in keys
        )


def test_a_real_daemon_handles_a_non_utf8_name_once_across_a_restart(tmp_path, daemons):
    """``mv $'\\xff\\xfe'.csv inbox/`` next to a running daemon, as the finding was found."""
    project = make_project(tmp_path / "d", shutdown_grace="1s")
    out = tmp_path / "received"
    out.mkdir()
    project.pipeline(
        "drops",
        {
            "parameters": {"input_path": {"type": "path"}, "out": {"type": "str"}},
            "steps": {
                "s": {
                    "type": "command",
                    "command": [sys.executable, "-c", RECORD, *ARGS],
                    "allow_reuse": False,
                }
            },
        },
    )
    project.schedules(yaml.safe_dump({"schedules": [schedule(out)]}))
    inbox = project.datastore / "inbox"
    inbox.mkdir(parents=True)
    staging = os.path.join(os.fsencode(project.datastore), MOVED_IN)
    with open(staging, "wb") as handle:
        handle.write(b"dropped\n")

    daemon = daemons(project).start()
    wait_until(lambda: daemon.events("file_watch_started"), timeout=15)
    os.rename(staging, os.path.join(os.fsencode(inbox), MOVED_IN))
    path = os.path.join(os.fsencode(os.path.realpath(inbox)), MOVED_IN)
    received = out / path.hex()  # the step's argv held the name's real bytes
    wait_until(lambda: received.exists() and received.read_bytes() == b"dropped\n", timeout=20)
    daemon.stop()

    # After a restart: a later file is handled (so the start-up rescan, which comes first, is
    # done) and the first one is not handled again.
    again = daemons(project).start()
    wait_until(lambda: again.events("file_watch_started"), timeout=15)
    (inbox / "after.csv").write_bytes(b"later\n")
    wait_until(lambda: len(list(out.iterdir())) == 2, timeout=20)
    listed = project.cli("runs", "--json")
    assert listed.returncode == 0, listed.stderr
    triggers = sorted(r["trigger"] for r in json.loads(listed.stdout))
    assert triggers == ["file:inbox/\\xff\\xfe.csv", "file:inbox/after.csv"]
    again.stop()
    with project.store() as store:
        assert len(store.list_runs(limit=0)) == 2
