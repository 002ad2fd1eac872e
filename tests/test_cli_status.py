"""``pipesched status`` as an operator runs it: without a daemon (says so, exit 3), with a real
daemon on SQLite (its pid, role, schedules, runs in flight, last reload; read from the daemon
alone, importing neither SQLAlchemy nor pydantic nor rich), on a real 80-column terminal, with
a store whose password must not show, and with a leader and a standby sharing PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess
from tests.ha_daemons import start_pair
from tests.projects import Project, make_project
from tests.test_cli_fast_reads import heavy_modules
from tests.test_cli_tables_width import assert_fits, on_terminal, visible

ON_POSTGRESQL = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
NOT_RUNNING = 3
SCHEDULES = """
    schedules:
      - {name: nightly, pipeline: tick, cron: "0 3 * * *"}
      - {name: weekly, pipeline: tick, cron: "0 4 * * MON"}
"""


def daemon_project(root: Path) -> Project:
    project = make_project(root, shutdown_grace="1s")
    project.pipeline(
        "tick",
        "steps:\n  s: {type: python_script, script: s.py}\n",
        {"s.py": "pass\n"},
    )
    project.schedules(SCHEDULES)
    return project


def status_json(project: Project, expect: int = 0) -> dict:
    done = project.cli("status", "--json")
    assert done.returncode == expect, done.stderr
    return json.loads(done.stdout)


def test_without_a_daemon_status_says_so_and_exits_3(tmp_path: Path) -> None:
    project = daemon_project(tmp_path)
    done = project.cli("status")
    assert done.returncode == NOT_RUNNING, done.stderr
    assert "Daemon:" in done.stdout and "not running" in done.stdout
    assert "pipesched daemon" in done.stdout  # how to start one
    assert str(project.state_dir / "pipesched.db") in done.stdout
    report = status_json(project, expect=NOT_RUNNING)
    assert report == {
        "daemon": None,
        "store": {"url": f"sqlite:///{project.state_dir / 'pipesched.db'}", "kind": "sqlite"},
        "ha": None,
    }


def test_the_help_names_the_exit_statuses(tmp_path: Path) -> None:
    done = daemon_project(tmp_path).cli("status", "--help")
    assert done.returncode == 0
    assert "3  no daemon runs" in done.stdout and "0  the daemon runs" in done.stdout


def test_status_of_a_running_daemon_and_its_reloads(tmp_path: Path, daemons) -> None:
    project = daemon_project(tmp_path)
    daemon: DaemonProcess = daemons(project).start()
    assert daemon.proc is not None
    report = status_json(project)
    assert report["store"] == {
        "url": f"sqlite:///{project.state_dir / 'pipesched.db'}",
        "kind": "sqlite",
    }
    assert report["ha"] is None
    running = report["daemon"]
    assert running["running"] is True
    assert running["pid"] == daemon.proc.pid
    assert (running["role"], running["epoch"]) == ("single", None)
    assert (running["schedules"], running["runs_in_flight"]) == (2, 0)
    assert running["store_status"] == "ok" and "store_reason" not in running
    assert running["last_reload"] is None
    assert running["started_at"].endswith("+00:00")

    text = project.cli("status")
    assert text.returncode == 0, text.stderr
    assert "running (single)" in text.stdout
    assert "PID:" in text.stdout and str(daemon.proc.pid) in text.stdout
    assert "Last reload:" in text.stdout and "none since start" in text.stdout

    assert project.cli("reload").returncode == 0
    reload = status_json(project)["daemon"]["last_reload"]
    assert (reload["reloaded"], reload["errors"]) == (True, 0)
    assert "done" in project.cli("status").stdout

    project.schedules("schedules:\n  - {name: broken, pipeline: nowhere, cron: '0 3 * * *'}\n")
    assert project.cli("reload").returncode == 1
    refused = status_json(project)["daemon"]
    assert refused["last_reload"]["reloaded"] is False and refused["last_reload"]["errors"] >= 1
    assert refused["schedules"] == 2  # the previous definitions keep serving
    assert "refused (" in project.cli("status").stdout


def test_status_with_a_daemon_on_sqlite_reads_only_the_daemon(tmp_path: Path, daemons) -> None:
    project = daemon_project(tmp_path)
    daemons(project).start()
    assert heavy_modules(project, "status") == set()
    assert heavy_modules(project, "status", "--json") == set()


def test_status_of_a_daemon_at_a_url(tmp_path: Path, daemons) -> None:
    """With --url and a token: that daemon's health; the store is read on its own machine."""
    project = daemon_project(tmp_path)
    daemon: DaemonProcess = daemons(project).start()
    (listening,) = wait_until(lambda: daemon.events("api_listening"), timeout=15)
    created = project.cli("token", "create", "status-reader")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    asked = project.cli(
        "--url", listening["url"], "status", "--json", env={"PIPESCHED_TOKEN": token}
    )
    assert asked.returncode == 0, asked.stderr
    report = json.loads(asked.stdout)
    assert report["daemon"]["pid"] == daemon.proc.pid
    assert (report["store"], report["ha"]) == (None, None)
    text = project.cli("--url", listening["url"], "status", env={"PIPESCHED_TOKEN": token})
    assert f"running at {listening['url']}" in text.stdout
    daemon.stop()
    gone = project.cli("--url", listening["url"], "status", env={"PIPESCHED_TOKEN": token})
    assert gone.returncode == NOT_RUNNING, gone.stderr
    assert "no answer at" in gone.stdout


def test_status_fits_an_80_column_terminal(tmp_path: Path, daemons) -> None:
    """The store's URL is wider than the terminal's room for it: it is shortened in its
    middle, so the file name stays."""
    project = daemon_project(tmp_path / "p")
    url = f"sqlite:///{project.state_dir / 'pipesched.db'}"
    assert len(url) > 70
    daemons(project).start()
    lines = visible(on_terminal(project, 80, "status"))
    assert_fits(lines, 80)
    assert any(line.startswith("Daemon:") and "running" in line for line in lines)
    store = next(line for line in lines if line.startswith("Store:"))
    assert store.endswith("pipesched.db") and url not in store


def test_a_store_password_never_shows_even_when_the_store_cannot_be_read(
    tmp_path: Path,
) -> None:
    project = make_project(
        tmp_path, database_url="postgresql+psycopg://ops:s3cret-pw@127.0.0.1:1/pipesched"
    )
    done = project.cli("status", "--json")
    assert done.returncode == NOT_RUNNING, done.stderr
    assert "s3cret-pw" not in done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["store"]["url"] == "postgresql+psycopg://ops:***@127.0.0.1:1/pipesched"
    assert report["store"]["kind"] == "postgresql"
    assert report["store"]["error"]  # why the leadership could not be read
    assert report["ha"] is None
    text = project.cli("status")
    assert "s3cret-pw" not in text.stdout + text.stderr and "Unreadable:" in text.stdout


# -- several daemons on PostgreSQL -----------------------------------------------------------


@ON_POSTGRESQL
def test_a_single_daemon_on_postgresql_shows_no_leader_yet(
    tmp_path: Path, database_url: str, daemons
) -> None:
    project = make_project(tmp_path, database_url=database_url, shutdown_grace="1s")
    daemons(project).start()
    report = status_json(project)
    assert report["store"]["kind"] == "postgresql"
    assert report["daemon"]["role"] == "single"
    assert report["ha"]["epoch"] == 0
    assert report["ha"]["leader"] is None and report["ha"]["daemons"] == []


@pytest.mark.slow
@ON_POSTGRESQL
def test_status_lists_the_leader_the_standby_and_the_epoch(
    tmp_path: Path, database_url: str, daemons
) -> None:
    pair = start_pair(tmp_path, database_url, daemons)
    assert pair.leader.proc is not None and pair.standby.proc is not None
    leader_pid, standby_pid = pair.leader.proc.pid, pair.standby.proc.pid

    def both_beating() -> dict | None:
        report = status_json(pair.standby_project)
        roles = {(d["pid"], d["role"]) for d in report["ha"]["daemons"]}
        return report if roles == {(leader_pid, "leader"), (standby_pid, "standby")} else None

    report = wait_until(both_beating, timeout=20, message="both daemons' heartbeats")
    ha = report["ha"]
    assert ha["epoch"] >= 1
    assert ha["leader"]["pid"] == leader_pid and ha["leader"]["epoch"] == ha["epoch"]
    assert ha["leader"]["lease_lapsed"] is False
    standby_beat = next(d for d in ha["daemons"] if d["role"] == "standby")
    assert standby_beat["age_seconds"] < standby_beat["lease_seconds"]
    assert standby_beat["epoch"] == ha["epoch"]

    standby = report["daemon"]
    assert (standby["role"], standby["pid"]) == ("standby", standby_pid)
    assert standby["leader"]["pid"] == leader_pid

    leader = status_json(pair.leader_project)["daemon"]
    assert (leader["role"], leader["epoch"], leader["pid"]) == ("leader", ha["epoch"], leader_pid)

    text = pair.standby_project.cli("status")
    assert text.returncode == 0, text.stderr
    assert "running (standby, epoch" in text.stdout
    assert "Epoch:" in text.stdout and "Daemons:" in text.stdout
    table = text.stdout.split("Daemons:\n", 1)[1].splitlines()
    assert table[0].split()[:5] == ["HOST", "PID", "ROLE", "EPOCH", "HEARTBEAT"]
    rows = {row.split()[1]: row.split()[2] for row in table[1:]}
    assert rows == {str(leader_pid): "leader", str(standby_pid): "standby"}

    lines = visible(on_terminal(pair.standby_project, 80, "status"))
    assert_fits(lines, 80)
    assert any(str(standby_pid) in line and "standby" in line for line in lines)
