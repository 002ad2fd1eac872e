"""A reload (SIGHUP) of a real daemon is all or nothing, as ``pipesched validate`` is: for each
kind of error validate reports (in the schedules file, in a pipeline, in the config), the change
that carries it, together with a new good schedule, is refused whole. The old schedule keeps
firing, the new one is neither served nor run, and the daemon's log line names the same file
and line as validate. A good change afterwards is taken."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler.services.daemon_http import DaemonClient, socket_path
from scheduler.store import Store
from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess
from tests.projects import Project, make_project

TICK = "steps:\n  s: {type: command, command: ['true'], allow_reuse: false}\n"
OLD = "  - {name: old, pipeline: tick, interval: 1s}\n"
NEW = "  - {name: new, pipeline: tick, interval: 1s}\n"
SCHEDULES = "config/schedules.yaml"


def with_new(extra: str = "") -> str:
    """The schedules file of a change: the old schedule, a new good one, then ``extra``."""
    return "schedules:\n" + OLD + NEW + extra


def schedule_line(text: str) -> dict[str, str | None]:
    return {SCHEDULES: with_new(f"  - {text}\n")}


BAD_CONFIG = "max_log_bytes: lots\n"  # appended to the config

BROKEN: dict[str, dict[str, str | None]] = {
    "yaml-syntax": schedule_line("{name: x, pipeline: tick, interval: 1s"),
    "unknown-key": schedule_line("{name: x, pipeline: tick, intervall: 5s}"),
    "unknown-pipeline": schedule_line("{name: x, pipeline: nowhere, interval: 5s}"),
    "bad-cron": schedule_line("{name: x, pipeline: tick, cron: '61 * * * *'}"),
    "unknown-time-zone": schedule_line(
        "{name: x, pipeline: tick, cron: '0 2 * * *', timezone: Mars/Olympus_Mons}"
    ),
    "duplicate-name": schedule_line("{name: old, pipeline: tick, interval: 5s}"),
    "two-triggers": schedule_line("{name: x, pipeline: tick, interval: 5s, cron: '0 2 * * *'}"),
    "no-trigger": schedule_line("{name: x, pipeline: tick}"),
    "interval-out-of-range": schedule_line("{name: x, pipeline: tick, interval: 0s}"),
    "undeclared-parameter": schedule_line(
        "{name: x, pipeline: tick, interval: 5s, parameters: {nope: 1}}"
    ),
    "parameter-of-wrong-type": schedule_line(
        "{name: x, pipeline: needs, interval: 5s, parameters: {n: abc}}"
    ),
    "required-parameter-missing": schedule_line("{name: x, pipeline: needs, interval: 5s}"),
    "watched-path-outside": schedule_line(
        "{name: x, pipeline: tick, on_change: {datastore: default, path: ../outside/}}"
    ),
    "served-pipeline-broken": {
        SCHEDULES: with_new(),
        "pipelines/tick/pipeline.yaml": TICK.replace("allow_reuse", "alow_reuse"),
    },
    "pipeline-cycle": {
        SCHEDULES: with_new("  - {name: x, pipeline: cyc, interval: 5s}\n"),
        "pipelines/cyc/pipeline.yaml": (
            "steps:\n  a: {type: command, command: ['true'], depends_on: [b]}\n"
            "  b: {type: command, command: ['true'], depends_on: [a]}\n"
        ),
    },
    "config-broken": {SCHEDULES: with_new(), "config/pipesched.yaml": None},
}


class Served:
    """One daemon for the module, serving the old schedule alone between cases."""

    def __init__(self, root: Path) -> None:
        self.project: Project = make_project(root, shutdown_grace="1s")
        self.project.pipeline("tick", TICK)
        self.project.pipeline("needs", "parameters:\n  n: {type: int}\n" + TICK)
        self.project.schedules("schedules:\n" + OLD)
        self.root = root
        self.daemon = DaemonProcess(self.project)
        # Read once: a case breaks the config file itself.
        config = self.project.config()
        self.database_url = config.database_url
        self.control = DaemonClient(socket_path(config.state_dir))

    def runs_of(self, name: str) -> list:
        with Store.open(self.database_url) as store:
            return [r for r in store.list_runs(limit=0) if r.schedule == name]

    def served(self) -> int:
        """How many schedules the daemon serves (``/healthz``: the set it swapped in last)."""
        count: int = self.control.health()["schedules"]
        return count

    def change(self, files: dict[str, str | None]) -> dict[Path, str | None]:
        """Write the change; the files' earlier text (None: there was none), to put back."""
        before: dict[Path, str | None] = {}
        for relative, text in files.items():
            path = self.root / relative
            before[path] = path.read_text() if path.exists() else None
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text((before[path] or "") + BAD_CONFIG if text is None else text)
        return before

    @staticmethod
    def put_back(before: dict[Path, str | None]) -> None:
        for path, text in before.items():
            if text is None:
                path.unlink()
            else:
                path.write_text(text)

    def reload(self) -> list[str]:
        """SIGHUP; the errors the daemon logged refusing it (none: it took the change)."""
        refused = len(self.daemon.events("reload_refused"))
        done = len(self.daemon.events("reload_done"))
        self.daemon.signal(signal.SIGHUP)

        def ended() -> bool:
            return (
                len(self.daemon.events("reload_refused")) > refused
                or len(self.daemon.events("reload_done")) > done
            )

        wait_until(ended, timeout=15, message="the reload ended")
        return [e["error"] for e in self.daemon.events("reload_refused")[refused:]]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = Served(tmp_path_factory.mktemp("reload"))
    served.daemon.start()
    wait_until(lambda: served.runs_of("old"), timeout=15)
    yield served
    assert served.daemon.stop() == 0
    served.daemon.close()


def places(validate_stderr: str) -> set[tuple[str, int]]:
    """(file relative to the project, line) of every ``file:line:col: error:`` validate wrote."""
    found = re.findall(r"^(.+?):(\d+):\d+: error:", validate_stderr, flags=re.MULTILINE)
    return {(file, int(line)) for file, line in found}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_change_validate_refuses_is_not_swapped_in(world: Served, case: str):
    before = world.change(BROKEN[case])
    try:
        checked = world.project.cli("validate")
        assert checked.returncode == 1, checked.stderr
        where = places(checked.stderr)
        assert where, checked.stderr

        errors = world.reload()
        assert errors, "the daemon took a change validate refuses"
        assert len(world.daemon.events("reload_done")) == 0
        for file, line in where:  # the log line names the file and line validate named
            assert any(f"{file}:{line}:" in error for error in errors), (file, line, errors)

        assert world.served() == 1  # the old schedule alone
        fired = len(world.runs_of("old"))
        wait_until(lambda: len(world.runs_of("old")) > fired, timeout=15)  # and it fires
        assert world.runs_of("new") == []
    finally:
        world.put_back(before)


def test_a_version_never_published_is_refused_by_validate_and_reload_alike(world: Served):
    before = world.change(schedule_line("{name: x, pipeline: tick@v9, interval: 5s}"))
    try:
        checked = world.project.cli("validate")
        errors = world.reload()
        assert world.served() == 1  # the old schedule alone
        assert any(f"{SCHEDULES}:4:" in error for error in errors), errors
        assert checked.returncode == 1, checked.stderr
    finally:
        world.put_back(before)


def test_the_same_change_without_the_error_is_taken(world: Served):
    before = world.change({SCHEDULES: with_new()})
    try:
        assert world.project.cli("validate").returncode == 0
        assert world.reload() == []
        assert world.served() == 2
        wait_until(lambda: world.runs_of("new"), timeout=15)
    finally:
        world.put_back(before)
        assert world.reload() == []
