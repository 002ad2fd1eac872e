"""A foreground ``pipesched run`` always ends, whatever happens to its terminal or to itself:
a hang-up cancels the run and records it, a closed output pipe stops only the printing, and a
run whose process was killed with ``kill -9`` is closed by a running daemon (or marked by
``runs``/``show`` and closed by ``cancel`` without one). Real commands, real step processes, a
real daemon, real SQLite."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import shutil
import signal
import socket
import subprocess
import sys
import termios
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scheduler.core.procinfo import Owner, current_owner, is_alive, process_start_ticks
from scheduler.daemon.recovery import OWNER_EXITED, REASON, close_runs_of_exited_owners, recover
from scheduler.store.records import RunRecord
from tests.conftest import wait_until
from tests.projects import Project, make_project
from tests.store_fake import InMemoryStore

HOST = socket.gethostname()
CLOSED_WITHIN = 10.0  # a running daemon closes a killed foreground run within this


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """Pipeline ``slow``: step ``wait`` says who it is and waits for ``go``; ``after`` needs it."""
    project = make_project(tmp_path)
    project.pipeline(
        "slow",
        """
        steps:
          wait:
            type: python_script
            script: wait.py
            allow_reuse: false
          after:
            type: python_script
            script: after.py
            depends_on: [wait]
            allow_reuse: false
        """,
        {
            "wait.py": f"""
                import json, os, pathlib, time
                step = pathlib.Path("{tmp_path}") / "step.json"
                tmp = step.with_suffix(".tmp")
                tmp.write_text(json.dumps(
                    {{"pid": os.getpid(), "run": os.environ["PIPESCHED_RUN_ID"]}}
                ))
                tmp.replace(step)
                deadline = time.monotonic() + 120
                while not (pathlib.Path("{tmp_path}") / "go").exists():
                    if time.monotonic() > deadline:
                        raise SystemExit(3)
                    time.sleep(0.05)
            """,
            "after.py": f"""
                import pathlib
                (pathlib.Path("{tmp_path}") / "after-ran").write_text("yes")
            """,
        },
    )
    return project


@dataclass
class Step:
    """The ``wait`` step's process, as it reported itself."""

    pid: int
    ticks: int | None
    run_id: str

    def alive(self) -> bool:
        return is_alive(self.pid, self.ticks)


def wait_for_step(project: Project) -> Step:
    path = project.root / "step.json"
    wait_until(path.exists, timeout=30, message="the step started")
    data = json.loads(path.read_text())
    return Step(data["pid"], process_start_ticks(data["pid"]), data["run"])


def cli_env(project: Project) -> dict[str, str]:
    return {
        **os.environ,
        "PIPESCHED_CONFIG": str(project.config_path),
        "PIPESCHED_ASSERT_OFF_LOOP": "1",
        "NO_COLOR": "1",
    }


def run_command() -> list[str]:
    return [sys.executable, "-m", "scheduler.cli", "run", "slow"]


def start_quiet_run(project: Project) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        run_command(),
        env=cli_env(project),
        cwd=project.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stored(project: Project, run_id: str) -> dict:
    with project.store() as store:
        return store.get_run_detail(run_id).to_json()


def steps_of(doc: dict) -> dict[str, tuple[str, str | None]]:
    return {s["name"]: (s["status"], s["status_reason"]) for s in doc["steps"]}


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen]]:
    """Processes a test starts; any still running at the end is killed."""
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture
def leftover_step(project: Project) -> Iterator[None]:
    """Kills the ``wait`` step if a failing test left it behind."""
    yield
    path = project.root / "step.json"
    if path.exists():
        step = json.loads(path.read_text())
        if is_alive(step["pid"], None):
            os.killpg(step["pid"], signal.SIGKILL)


pytestmark = pytest.mark.usefixtures("leftover_step")


# ---- SIGHUP -------------------------------------------------------------------------------------


def test_sighup_cancels_the_run_and_records_it(project: Project, processes):
    """``pipesched run X & kill -HUP $!``."""
    proc = subprocess.Popen(
        [*run_command(), "--json"],
        env=cli_env(project),
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    processes.append(proc)
    step = wait_for_step(project)
    proc.send_signal(signal.SIGHUP)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    doc = json.loads(out)
    assert (doc["status"], doc["status_reason"]) == ("canceled", "terminal hung up")
    assert steps_of(doc) == {
        "wait": ("canceled", "terminal hung up"),
        "after": ("canceled", "terminal hung up"),
    }
    assert stored(project, step.run_id)["status"] == "canceled"
    wait_until(lambda: not step.alive(), timeout=10, message="the step was stopped")
    assert not (project.root / "after-ran").exists()


def _take_terminal() -> None:
    """In the child, a session leader: make the pty on stdin its controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def test_a_terminal_that_hangs_up_cancels_the_run(project: Project, processes):
    """The terminal window closes: the kernel sends SIGHUP, and every later write to the
    terminal fails (EIO) — the summary printed at the end must not turn the cancel into a
    crash."""
    leader, terminal = pty.openpty()
    proc = subprocess.Popen(
        run_command(),
        env={k: v for k, v in cli_env(project).items() if k != "NO_COLOR"},
        cwd=project.root,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        start_new_session=True,
        preexec_fn=_take_terminal,
    )
    processes.append(proc)
    os.close(terminal)
    try:
        step = wait_for_step(project)
    finally:
        os.close(leader)  # the hang-up
    assert proc.wait(timeout=60) == 130
    doc = stored(project, step.run_id)
    assert (doc["status"], doc["status_reason"]) == ("canceled", "terminal hung up")
    assert steps_of(doc)["after"] == ("canceled", "terminal hung up")
    wait_until(lambda: not step.alive(), timeout=10, message="the step was stopped")


# ---- a closed output pipe -----------------------------------------------------------------------


def test_a_pipe_closed_by_head_stops_the_printing_not_the_run(project: Project, processes):
    """``pipesched run X 2>&1 | head -2``: once head has gone, the run goes on to its end,
    is recorded, and the exit status is the run's outcome."""
    root = project.root
    script = (
        '"$0" -m scheduler.cli run slow 2>&1 | (head -2 > "$1"; exec 0<&-; : > "$2")\n'
        'echo "${PIPESTATUS[0]}" > "$3"\n'
    )
    lines, head_gone, status = root / "lines", root / "head-gone", root / "status"
    bash = shutil.which("bash")
    assert bash is not None
    proc = subprocess.Popen(
        [bash, "-c", script, sys.executable, str(lines), str(head_gone), str(status)],
        env=cli_env(project),
        cwd=root,
    )
    processes.append(proc)
    step = wait_for_step(project)
    # head read its two lines and left, and nobody else holds the pipe's reading end: every
    # line printed from now on meets a closed pipe.
    wait_until(head_gone.exists, timeout=30, message="head exited")
    (root / "go").touch()
    assert proc.wait(timeout=60) == 0
    assert status.read_text().strip() == "0"
    assert lines.read_text().splitlines()[0].startswith(f"run {step.run_id} of slow started")
    doc = stored(project, step.run_id)
    assert doc["status"] == "completed"
    assert steps_of(doc) == {"wait": ("completed", None), "after": ("completed", None)}
    assert (root / "after-ran").exists()


def test_a_failed_run_behind_a_closed_pipe_still_exits_non_zero(project: Project, processes):
    (project.root / "pipelines" / "slow" / "after.py").write_text("raise SystemExit(2)\n")
    proc = subprocess.Popen(
        run_command(),
        env=cli_env(project),
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    processes.append(proc)
    assert proc.stdout is not None
    proc.stdout.readline()  # "run ... started"
    step = wait_for_step(project)
    proc.stdout.close()  # the reader goes away
    (project.root / "go").touch()
    assert proc.wait(timeout=60) == 1
    doc = stored(project, step.run_id)
    assert (doc["status"], doc["status_reason"]) == ("failed", "step failed: after")


# ---- kill -9 ------------------------------------------------------------------------------------


def test_kill_9_with_a_daemon_running_closes_the_run_and_kills_its_steps(
    project: Project, processes, daemons
):
    daemon = daemons(project).start()
    proc = start_quiet_run(project)
    processes.append(proc)
    step = wait_for_step(project)
    proc.kill()
    proc.wait(timeout=10)

    wait_until(
        lambda: stored(project, step.run_id)["status"] != "running",
        timeout=CLOSED_WITHIN,
        message="the daemon closed the run of the killed foreground process",
    )
    doc = stored(project, step.run_id)
    assert (doc["status"], doc["status_reason"]) == ("failed", OWNER_EXITED)
    assert steps_of(doc) == {
        "wait": ("failed", OWNER_EXITED),
        "after": ("skipped", OWNER_EXITED),
    }
    wait_until(lambda: not step.alive(), timeout=5, message="the daemon killed the step")
    assert not (project.root / "after-ran").exists()
    assert daemon.proc is not None and daemon.proc.poll() is None
    assert not daemon.events("owner_check_failed"), daemon.log()
    assert daemon.stop() == 0


def test_kill_9_without_a_daemon_is_marked_and_cancel_closes_it(project: Project, processes):
    proc = start_quiet_run(project)
    processes.append(proc)
    step = wait_for_step(project)
    proc.kill()
    proc.wait(timeout=10)

    table = project.cli("runs")
    assert table.returncode == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if line.startswith(step.run_id))
    assert "running (owner gone)" in row
    (listed,) = json.loads(project.cli("runs", "--json").stdout)
    assert listed["status"] == "running" and listed["owner_alive"] is False
    page = project.cli("show", step.run_id)
    assert "running (owner gone)" in page.stdout, page.stdout
    shown = json.loads(project.cli("show", step.run_id, "--json").stdout)
    assert shown["status"] == "running" and shown["owner_alive"] is False
    assert step.alive()  # nobody watches it, nobody has stopped it yet

    canceled = project.cli("cancel", step.run_id)
    assert canceled.returncode == 0, canceled.stderr
    doc = stored(project, step.run_id)
    assert (doc["status"], doc["status_reason"]) == ("canceled", "canceled by user")
    assert steps_of(doc)["wait"] == ("canceled", "canceled by user")
    wait_until(lambda: not step.alive(), timeout=10, message="cancel killed the step")
    assert "owner_alive" not in json.loads(project.cli("runs", "--json").stdout)[0]


def test_a_daemon_started_after_kill_9_records_owner_exited(project: Project, processes, daemons):
    proc = start_quiet_run(project)
    processes.append(proc)
    step = wait_for_step(project)
    proc.kill()
    proc.wait(timeout=10)

    daemon = daemons(project).start()  # recovery runs before READY=1
    doc = stored(project, step.run_id)
    assert (doc["status"], doc["status_reason"]) == ("failed", OWNER_EXITED)
    assert steps_of(doc)["wait"] == ("failed", OWNER_EXITED)
    wait_until(lambda: not step.alive(), timeout=5, message="recovery killed the step")
    assert daemon.stop() == 0


# ---- the rules, on the store's records ----------------------------------------------------------

STEPS = [("prep", "Prep", "python_script"), ("train", "Train", "python_script")]


def dead_owner() -> Owner:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    ticks = process_start_ticks(process.pid) or 0
    process.wait()
    return Owner(HOST, process.pid, ticks)


def record(store: InMemoryStore, owner: Owner | None, trigger: str, *, start: bool) -> RunRecord:
    run = store.create_run(
        pipeline="p",
        content_hash="h",
        experiment="p",
        parameters={},
        trigger=trigger,
        steps=STEPS,
        owner=owner,
    )
    if start:
        store.start_run(run.id, owner)
        store.begin_attempt(run.id, "prep", 1)
    return run


def test_recovery_names_the_cause_by_who_owned_the_run() -> None:
    store = InMemoryStore()
    dead = dead_owner()
    foreground = record(store, dead, "manual", start=True)
    scheduled = record(store, dead, "schedule:nightly", start=True)
    recover(store)
    assert store.get_run_detail(foreground.id).run.status_reason == OWNER_EXITED
    assert store.get_run_detail(scheduled.id).run.status_reason == REASON


def test_the_owner_check_closes_only_foreground_runs_of_dead_owners_here() -> None:
    store = InMemoryStore()
    dead = dead_owner()
    killed = record(store, dead, "manual", start=True)
    killed_before_start = record(store, dead, "manual", start=False)
    alive = record(store, current_owner(), "manual", start=True)
    elsewhere = record(store, Owner("elsewhere.example", 1, 1), "manual", start=True)
    daemons_own = record(store, current_owner(), "schedule:nightly", start=True)
    unowned = record(store, None, "api", start=False)

    closed = close_runs_of_exited_owners(store)

    assert sorted(closed) == sorted([killed.id, killed_before_start.id])
    for run in (killed, killed_before_start):
        got = store.get_run_detail(run.id).run
        assert (got.status, got.status_reason) == ("failed", OWNER_EXITED)
    for run in (alive, elsewhere, daemons_own, unowned):
        got = store.get_run_detail(run.id).run
        assert (got.status, got.status_reason) in (("running", None), ("queued", None))
    assert close_runs_of_exited_owners(store) == []  # each is closed once
