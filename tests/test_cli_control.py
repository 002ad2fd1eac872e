"""``pipesched cancel``, ``schedule enable|disable|trigger`` and ``fires`` as a user types them:
the real command in a subprocess, real step processes, a real SQLite store, and — where a daemon
is needed — the real control app on the real socket, with ``FakeDaemon`` standing in for the
daemon's internals behind the ``DaemonControl`` protocol.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from scheduler.api.control import create_control_app
from scheduler.api.server import serve_unix
from scheduler.cli import main
from scheduler.core.procinfo import is_alive, process_start_ticks
from scheduler.services.daemon_http import DaemonClient, socket_path
from scheduler.store import Store
from scheduler.store.records import Owner
from tests.conftest import wait_until
from tests.projects import Project, make_project

# The checkout under test, whatever the editable install currently points at.
REPO = str(Path(__file__).resolve().parents[1])
ENV = {"PYTHONPATH": REPO}
STEPS = [("wait", "Wait", "python_script"), ("after", "After", "python_script")]
FIRE_KEYS = {"schedule", "nominal_time", "path", "outcome", "reason", "run_id"}


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = make_project(tmp_path)
    project.pipeline(
        "slow",
        """
        steps:
          wait:
            type: python_script
            script: wait.py
        """,
        {
            "wait.py": f"""
            import os, time
            open("{tmp_path / "step.pid"}", "w").write(str(os.getpid()))
            time.sleep(600)
            """
        },
    )
    (project.root / "config" / "schedules.yaml").write_text(
        "schedules:\n  - name: nightly\n    pipeline: slow\n    cron: '0 3 * * *'\n"
    )
    return project


@pytest.fixture
def store(project: Project) -> Iterator[Store]:
    with project.store() as opened:
        yield opened


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def pipesched(project: Project, *args: str) -> Result:
    """The real command in a subprocess, for tests where processes and signals matter."""
    done = project.cli(*args, env=ENV)
    return Result(done.returncode, done.stdout, done.stderr)


def in_process(project: Project, *args: str) -> Result:
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


# -- cancel ----------------------------------------------------------------------------------


def test_cancel_stops_a_foreground_run_in_another_process(project: Project, store: Store):
    pid_file = project.root / "step.pid"
    runner = subprocess.Popen(
        [sys.executable, "-m", "scheduler.cli", "run", "slow", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            **ENV,
            "PIPESCHED_CONFIG": str(project.config_path),
            "PIPESCHED_ASSERT_OFF_LOOP": "1",
        },
        cwd=project.root,
    )
    try:
        wait_until(lambda: pid_file.exists() and pid_file.read_text(), timeout=30)
        step_pid = int(pid_file.read_text())
        (run,) = store.list_runs()
        result = pipesched(project, "cancel", run.id[:8])
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"canceled {run.id}\n"
        _out, err = runner.communicate(timeout=30)
    finally:
        runner.kill()
    assert runner.returncode == 130, err
    after = store.get_run(run.id)
    assert (after.status, after.status_reason) == ("canceled", "canceled by user")
    wait_until(lambda: not is_alive(step_pid, None), timeout=5)


def test_cancel_closes_a_run_whose_owner_is_dead(project: Project, store: Store):
    run_id = _run_of_a_dead_owner(store)
    step = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        store.begin_attempt(run_id, "wait", 1)
        store.set_attempt_process(
            run_id,
            "wait",
            1,
            pid=step.pid,
            pgid=step.pid,
            proc_start_ticks=process_start_ticks(step.pid),
        )
        result = pipesched(project, "cancel", run_id)
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"canceled {run_id}\n"
        assert step.wait(timeout=10) == -signal.SIGTERM  # its group was killed
    finally:
        step.kill()
        step.wait()
    detail = store.get_run_detail(run_id)
    assert (detail.run.status, detail.run.status_reason) == ("canceled", "canceled by user")
    assert {name: a.status for name, a in detail.latest_attempts().items()} == {
        "wait": "canceled",
        "after": "canceled",
    }


def test_cancel_leaves_a_reused_pid_alone(project: Project, store: Store):
    """The recorded step's pid now names another process (other start time): not killed."""
    run_id = _run_of_a_dead_owner(store)
    stranger = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        store.begin_attempt(run_id, "wait", 1)
        ticks = process_start_ticks(stranger.pid)
        assert ticks is not None
        store.set_attempt_process(
            run_id, "wait", 1, pid=stranger.pid, pgid=stranger.pid, proc_start_ticks=ticks - 1
        )
        result = pipesched(project, "cancel", run_id)
        assert result.returncode == 0, result.stderr
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()
    assert store.get_run(run_id).status == "canceled"


def test_cancel_kills_a_step_whose_pid_its_dead_owner_never_recorded(
    project: Project, store: Store
):
    """The owner died between spawning the step and recording its pid: the step's
    environment still names the run, and the cancel finds it by that."""
    run_id = _run_of_a_dead_owner(store)
    store.begin_attempt(run_id, "wait", 1)
    step_env = {**os.environ, "PIPESCHED_RUN_ID": run_id, "PIPESCHED_STEP": "wait"}
    step = subprocess.Popen(["sleep", "600"], start_new_session=True, env=step_env)
    try:
        result = pipesched(project, "cancel", run_id)
        assert result.returncode == 0, result.stderr
        assert step.wait(timeout=30) == -signal.SIGTERM
    finally:
        step.kill()
        step.wait()
    assert store.get_run(run_id).status == "canceled"


def test_cancel_of_a_finished_run_says_so_and_exits_1(project: Project, store: Store):
    run_id = _run_of_a_dead_owner(store)
    store.finish_run(run_id, "completed")
    result = in_process(project, "cancel", run_id)
    assert result.returncode == 1
    assert f"run {run_id} has already finished: completed" in result.stderr
    assert "Traceback" not in result.stderr
    assert store.get_run(run_id).status == "completed"


def test_cancel_goes_through_the_daemon_when_it_owns_the_run(project: Project, store: Store):
    daemon = FakeDaemon()
    run = store.create_run(
        pipeline="slow",
        content_hash="c0ffee",
        experiment="slow",
        parameters={},
        trigger="schedule:nightly",
        steps=STEPS,
        owner=Owner(socket.gethostname(), os.getpid(), process_start_ticks(os.getpid()) or 0),
    )
    with daemon_serving(daemon, store, project):
        result = in_process(project, "cancel", run.id[:10])
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"canceled {run.id}\n"
    assert daemon.calls == [("cancel", run.id)]


def test_a_daemon_that_does_not_answer_is_not_sent_sigint(project: Project, store: Store):
    """SIGINT would stop the whole daemon and every run in it, not cancel one run."""
    daemon_like = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)", "daemon"], start_new_session=True
    )
    try:
        ticks = wait_until(lambda: process_start_ticks(daemon_like.pid))
        owner = Owner(socket.gethostname(), daemon_like.pid, ticks)
        run = store.create_run(
            pipeline="slow",
            content_hash="c0ffee",
            experiment="slow",
            parameters={},
            trigger="manual",
            steps=STEPS,
            owner=owner,
        )
        result = in_process(project, "cancel", run.id)
        assert result.returncode == 1
        assert "belongs to the daemon" in result.stderr
        assert daemon_like.poll() is None
    finally:
        daemon_like.kill()
        daemon_like.wait()
    assert store.get_run(run.id).status == "queued"


def test_with_a_daemon_up_a_run_it_does_not_own_is_cancelled_here(project: Project, store: Store):
    daemon = FakeDaemon()
    run_id = _run_of_a_dead_owner(store)
    with daemon_serving(daemon, store, project):
        result = in_process(project, "cancel", run_id)
    assert result.returncode == 0, result.stderr
    assert daemon.calls == []
    assert store.get_run(run_id).status == "canceled"


# -- schedule enable | disable | trigger -----------------------------------------------------


@pytest.mark.parametrize(("action", "override"), [("enable", True), ("disable", False)])
def test_without_a_daemon_enable_and_disable_write_the_override(
    project: Project, store: Store, action: str, override: bool
):
    result = in_process(project, "schedule", action, "nightly")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"schedule nightly {action}d;")
    assert "next start" in result.stdout
    assert store.schedule_states()["nightly"].override is override


def test_disabling_an_unknown_schedule_names_the_known_ones(project: Project, store: Store):
    result = in_process(project, "schedule", "disable", "nigthly")
    assert result.returncode == 1
    assert "no schedule 'nigthly'" in result.stderr and "nightly" in result.stderr
    assert store.schedule_states() == {}


def test_a_schedule_can_be_disabled_while_another_one_is_broken(project: Project, store: Store):
    schedules = project.root / "config" / "schedules.yaml"
    schedules.write_text(
        schedules.read_text() + "  - name: broken\n    pipeline: slow\n    cron: 'every day'\n"
    )
    result = in_process(project, "schedule", "disable", "broken")
    assert result.returncode == 0, result.stderr
    assert store.schedule_states()["broken"].override is False


def test_trigger_without_a_daemon_exits_1_saying_so(project: Project):
    result = in_process(project, "schedule", "trigger", "nightly")
    assert result.returncode == 1
    assert result.stderr == ("error: the daemon is not running (start it with: pipesched daemon)\n")


def test_with_a_daemon_disable_reaches_it_and_not_the_store(project: Project, store: Store):
    daemon = FakeDaemon()
    with daemon_serving(daemon, store, project):
        result = in_process(project, "schedule", "disable", "nightly")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "schedule nightly disabled\n"
    assert daemon.calls == [("enabled", ("nightly", False))]
    assert "nightly" not in store.schedule_states()


def test_with_a_daemon_trigger_prints_the_run_it_started(project: Project, store: Store):
    daemon = FakeDaemon()
    with daemon_serving(daemon, store, project):
        result = in_process(project, "schedule", "trigger", "nightly")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "schedule nightly fired: run r2 started\n"


def test_a_trigger_that_starts_no_run_exits_1_with_the_reason(project: Project, store: Store):
    daemon = FakeDaemon(trigger_result={"run_id": None, "outcome": "skipped", "reason": "overlap"})
    with daemon_serving(daemon, store, project):
        result = in_process(project, "schedule", "trigger", "nightly")
    assert result.returncode == 1
    assert "started no run (skipped: overlap)" in result.stderr


def test_the_daemons_not_found_is_the_commands_error(project: Project, store: Store):
    with daemon_serving(FakeDaemon(), store, project):
        result = in_process(project, "schedule", "trigger", "ghost")
    assert result.returncode == 1
    assert result.stderr == "error: no schedule 'ghost'\n"


# -- fires -----------------------------------------------------------------------------------


def test_fires_json_has_designs_shape(project: Project, store: Store):
    from datetime import UTC, datetime

    store.register_schedules({"nightly": "file"})
    nominal = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    store.claim_fire("nightly", nominal)
    store.update_fire("nightly", nominal, outcome="skipped", reason="overlap")
    result = in_process(project, "fires", "nightly", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        {
            "schedule": "nightly",
            "nominal_time": "2026-11-25T03:00:00.000000+00:00",
            "path": None,
            "outcome": "skipped",
            "reason": "overlap",
            "run_id": None,
        }
    ]


def test_fires_table_lists_newest_first_within_the_limit(project: Project, store: Store):
    from datetime import UTC, datetime, timedelta

    store.register_schedules({"nightly": "file"})
    first = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    for day in range(3):
        store.claim_fire("nightly", first + timedelta(days=day), outcome="missed", reason="x")
    result = in_process(project, "fires", "--limit", "2", "--no-headers")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert "2026-11-27" in lines[0] and "2026-11-26" in lines[1]
    assert all(line.split()[0] == "nightly" and " missed " in line for line in lines)


def test_fires_of_an_unknown_schedule_exits_1(project: Project):
    result = in_process(project, "fires", "nigthly")
    assert result.returncode == 1
    assert "no schedule 'nigthly'" in result.stderr


# -- helpers ---------------------------------------------------------------------------------


class FakeDaemon:
    """Stands in for the daemon's internals; remembers what it was asked."""

    def __init__(self, trigger_result: dict | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.trigger_result = trigger_result or {"run_id": "r2", "outcome": "started"}

    def health(self) -> dict:
        return {"status": "ok", "pid": os.getpid(), "schedules": 1, "runs_in_flight": 0}

    async def cancel_run(self, run_id: str) -> dict:
        self.calls.append(("cancel", run_id))
        return {"id": run_id, "status": "canceled", "status_reason": "canceled by user"}

    async def set_schedule_enabled(self, name: str, enabled: bool) -> dict:
        from scheduler.core.errors import NotFound

        self.calls.append(("enabled", (name, enabled)))
        if name != "nightly":
            raise NotFound(f"no schedule {name!r}")
        return {"name": name, "enabled": enabled, "override": enabled}

    async def trigger_schedule(self, name: str) -> dict:
        from scheduler.core.errors import NotFound

        self.calls.append(("trigger", name))
        if name != "nightly":
            raise NotFound(f"no schedule {name!r}")
        return {"reason": None, **self.trigger_result}


@contextmanager
def daemon_serving(control: FakeDaemon, store: Store, project: Project) -> Iterator[None]:
    """The control app on the project's daemon socket, served by a loop in a thread."""
    path = socket_path(project.state_dir)
    started = threading.Event()
    box: dict[str, Any] = {}

    async def serve() -> None:
        try:
            server = await serve_unix(create_control_app(control, store), path)
            box["loop"], box["stop"] = asyncio.get_running_loop(), asyncio.Event()
        except BaseException as exc:
            box["error"] = exc
            raise
        finally:
            started.set()
        await box["stop"].wait()
        await server.stop()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    started.wait(timeout=10)
    if "error" in box:
        raise box["error"]
    assert DaemonClient(path).available()
    try:
        yield
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(timeout=10)


def _run_of_a_dead_owner(store: Store) -> str:
    """A running run whose owner process has exited (its pid may be reused: the start time
    recorded here matches no process)."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    owner = Owner(host=socket.gethostname(), pid=gone.pid, start_ticks=1)
    run = store.create_run(
        pipeline="slow",
        content_hash="c0ffee",
        experiment="slow",
        parameters={},
        trigger="manual",
        steps=STEPS,
        owner=owner,
    )
    store.start_run(run.id, owner)
    return run.id
