"""Any file name a POSIX system allows, dropped next to a real ``pipesched daemon``: bytes that
are not UTF-8, a newline, a terminal escape, a leading ``-``, a backslash that reads like an
escape. Each is handled exactly once (also across a restart), its step's argv holds the file's
real bytes, and ``pipesched fires``/``runs`` show the name escaped: valid UTF-8 JSON, one table
row per file, no control character reaching the terminal."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import yaml

from scheduler.core.pathnames import escape_name
from tests.conftest import wait_until
from tests.projects import Project, make_project

# The step writes the file's content to OUT/<hex of the path bytes its argv received>.
RECORD = (
    "import os, sys; p = os.fsencode(sys.argv[1]); out = sys.argv[2]; "
    "open(os.path.join(out, p.hex()), 'wb').write(open(p, 'rb').read())"
)

MOVED_IN = [
    b"\xff\xfe.csv",  # not UTF-8 at all
    b"-rf.csv",  # an option to any tool that takes it as an argument
    b"--help",
    b"a\\xff.csv",  # a real backslash: must not read back as the byte 0xff
]
WRITTEN_IN_PLACE = [
    b"w\xe9\xff-in-place.csv",  # Latin-1
    b"new\nline.csv",
    b"a\xff.csv",  # the byte the name above only looks like
    b"\x1b[31mred.csv",  # a terminal escape sequence
]
NAMES = MOVED_IN + WRITTEN_IN_PLACE


def shown(name: bytes) -> str:
    return "inbox/" + escape_name(os.fsdecode(name))


def drops_project(root: Path, out: Path) -> Project:
    project = make_project(root, shutdown_grace="1s")
    project.pipeline(
        "drops",
        {
            "parameters": {"input_path": {"type": "path"}, "out": {"type": "str"}},
            "steps": {
                "s": {
                    "type": "command",
                    "command": [
                        sys.executable,
                        "-c",
                        RECORD,
                        "${{parameters.input_path}}",
                        "${{parameters.out}}",
                    ],
                    "allow_reuse": False,
                }
            },
        },
    )
    schedule = {
        "name": "drops",
        "pipeline": "drops",
        "parameters": {"out": str(out)},
        "on_change": {
            "datastore": "default",
            "path": "inbox/",
            "data_path_parameter": "input_path",
            "settle": "0.2s",
        },
    }
    project.schedules(yaml.safe_dump({"schedules": [schedule]}))
    (project.datastore / "inbox").mkdir(parents=True)
    (project.datastore / "staging").mkdir()
    return project


def drop_all(project: Project) -> dict[bytes, bytes]:
    """Half renamed in from a staging folder, half written in place; the content by name."""
    inbox = os.fsencode(project.datastore / "inbox")
    staging = os.fsencode(project.datastore / "staging")
    contents = {name: b"content of " + name for name in NAMES}
    for name in MOVED_IN:
        with open(os.path.join(staging, name), "wb") as handle:
            handle.write(contents[name])
        os.rename(os.path.join(staging, name), os.path.join(inbox, name))
    for name in WRITTEN_IN_PLACE:
        with open(os.path.join(inbox, name), "wb") as handle:
            handle.write(contents[name])
    return contents


def stored_statuses(project: Project) -> list[str]:
    with project.store() as store:
        return [run.status for run in store.list_runs(limit=0)]


def runs_json(project: Project) -> list[dict]:
    listed = project.cli("runs", "--json")
    assert listed.returncode == 0, listed.stderr
    runs: list[dict] = json.loads(listed.stdout)
    return runs


def test_every_name_is_handled_once_with_its_real_bytes_and_shown_escaped(tmp_path, daemons):
    out = tmp_path / "received"
    out.mkdir()
    project = drops_project(tmp_path / "p", out)
    daemon = daemons(project).start()
    wait_until(lambda: daemon.events("file_watch_started"), timeout=15)
    contents = drop_all(project)

    def all_finished() -> bool:
        statuses = stored_statuses(project)
        return len(statuses) >= len(NAMES) and set(statuses) == {"completed"}

    wait_until(all_finished, timeout=30, interval=0.1)
    runs = runs_json(project)
    assert {r["status"] for r in runs} == {"completed"}
    assert sorted(r["trigger"] for r in runs) == sorted("file:" + shown(n) for n in NAMES)

    # Each step's argv held the file's real path, byte for byte, and the step read the file.
    inbox = os.fsencode(os.path.realpath(project.datastore / "inbox"))
    received = {bytes.fromhex(p.name): p.read_bytes() for p in out.iterdir()}
    assert received == {os.path.join(inbox, n): contents[n] for n in NAMES}

    fires = project.cli("fires", "drops", "--json")
    assert fires.returncode == 0, fires.stderr
    records = json.loads(fires.stdout.encode("utf-8"))  # strict UTF-8: no lone surrogate
    assert sorted(f["path"] for f in records) == sorted(shown(n) for n in NAMES)
    assert {f["outcome"] for f in records} == {"started"}
    assert shown(b"a\\xff.csv") == "inbox/a\\\\xff.csv" != shown(b"a\xff.csv")

    table = project.cli("fires", "drops")
    assert table.returncode == 0, table.stderr
    assert "\x1b" not in table.stdout and "\udcff" not in table.stdout
    listed = project.cli("runs")
    assert listed.returncode == 0, listed.stderr
    for name in NAMES:
        rows = [line for line in table.stdout.splitlines() if shown(name) in line.split()]
        assert len(rows) == 1, (name, table.stdout)
        rows = [line for line in listed.stdout.splitlines() if f"file:{shown(name)}" in line]
        assert len(rows) == 1, (name, listed.stdout)
    assert "\x1b" not in listed.stdout

    # A restart rescans the folder and handles nothing again; a later file still runs.
    assert daemon.stop() == 0
    again = daemons(project).start()
    wait_until(lambda: again.events("file_watch_started"), timeout=15)
    (project.datastore / "inbox" / "after.csv").write_bytes(b"later\n")
    wait_until(lambda: (out / os.path.join(inbox, b"after.csv").hex()).exists(), timeout=20)
    assert again.stop() == 0
    with project.store() as store:
        triggers = sorted(run.trigger for run in store.list_runs(limit=0))
    assert triggers == sorted(["file:inbox/after.csv", *("file:" + shown(n) for n in NAMES)])
