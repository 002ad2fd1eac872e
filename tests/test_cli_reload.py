"""``pipesched reload`` against a real daemon: a good change is served at once and the command
says so; a broken schedules.yaml is refused with the daemon's own ``file:line`` errors, exit 1,
and the old schedules keep serving; with no daemon running, exit 1 saying so."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess, daemon_request
from tests.projects import Project, make_project

TICK = "steps:\n  s: {type: command, command: ['true']}\n"
NIGHTLY = "  - {name: nightly, pipeline: tick, cron: '0 3 * * *'}\n"
HOURLY = "  - {name: hourly, pipeline: tick, cron: '0 * * * *'}\n"


@pytest.fixture
def project(tmp_path) -> Project:
    project = make_project(tmp_path)
    project.pipeline("tick", TICK)
    project.schedules("schedules:\n" + NIGHTLY)
    return project


@pytest.fixture
def daemon(project: Project, daemons) -> Iterator[DaemonProcess]:
    started = daemons(project).start()
    wait_until(lambda: started.events("api_listening"), timeout=15)
    yield started


def served(project: Project) -> int:
    """How many schedules the daemon serves, as it says on /healthz."""
    status, health = daemon_request(project, "GET", "/healthz")
    assert status == 200, health
    return int(health["schedules"])


def test_a_good_change_is_reloaded_and_served(project: Project, daemon: DaemonProcess):
    assert served(project) == 1
    project.schedules("schedules:\n" + NIGHTLY + HOURLY)
    reloaded = project.cli("reload")
    assert reloaded.returncode == 0, reloaded.stderr
    assert reloaded.stdout == "reloaded: 2 schedules served\n"
    assert daemon.events("reload_done")
    assert served(project) == 2


def test_a_broken_schedules_file_is_refused_with_its_errors(
    project: Project, daemon: DaemonProcess
):
    project.schedules("schedules:\n" + NIGHTLY + HOURLY + "  - {name: x, pipeline: tick}\n")
    reloaded = project.cli("reload")
    assert reloaded.returncode == 1
    assert reloaded.stdout == ""
    assert reloaded.stderr.splitlines() == [
        "config/schedules.yaml:4:5: error: schedule 'x' needs exactly one of cron, interval, "
        "recurrence or on_change (has none)",
        "reload refused: the daemon keeps serving the previous definitions",
    ]
    assert served(project) == 1  # the old set, without the good new schedule either


def test_reload_without_a_daemon_exits_1(project: Project):
    reloaded = project.cli("reload")
    assert reloaded.returncode == 1
    assert reloaded.stderr == (
        "error: the daemon is not running (start it with: pipesched daemon)\n"
    )
