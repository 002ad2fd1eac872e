"""No process of a step outlives it: a step forks a child that calls ``setsid()`` and ignores
SIGTERM (and a grandchild that does the same); after a timeout, a cancel, a ``replace``, a
shutdown or a plain exit of the step, no process carrying the step's marker (in its argv or its
environment) is left, and the daemon keeps no zombie children. Real daemons and real
``pipesched run`` processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from scheduler.core.procinfo import process_table
from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess
from tests.projects import Project, make_project

# argv: MARKER READY_DIR SLEEP MODE. The child leaves the session and ignores SIGTERM; in mode
# "fork" it forks a grandchild that does the same, in mode "exec" it replaces its program and
# its whole environment (so only the output pipe it kept ties it to the step). The step tells
# the test it is ready once the child is set up, then sleeps SLEEP seconds and exits 0.
STUBBORN = """
import os, signal, sys, time
marker, ready, sleep, mode = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
read_end, write_end = os.pipe()
if os.fork() == 0:
    os.setsid()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if mode == "exec":
        os.write(write_end, b"x")
        code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
        os.execve(sys.executable, [sys.executable, "-c", code, marker], {})
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(600)
        os._exit(0)
    os.write(write_end, b"x")
    time.sleep(600)
    os._exit(0)
os.read(read_end, 1)
open(os.path.join(ready, marker), "w").close()
print("child set up", flush=True)
time.sleep(sleep)
"""


def marked(needle: str) -> list[int]:
    """Live processes whose argv or environment holds ``needle`` (a zombie shows neither)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as cmdline:
                argv = cmdline.read()
            with open(f"/proc/{entry.name}/environ", "rb") as environ:
                env = environ.read()
        except OSError:
            continue
        if needle.encode() in argv or needle.encode() in env:
            found.append(int(entry.name))
    return found


def zombie_children(pid: int) -> list[int]:
    return [p.pid for p in process_table().values() if p.ppid == pid and p.zombie]


class Stubborn:
    """A project whose pipelines run STUBBORN with a marker of their own."""

    def __init__(self, tmp_path: Path, **settings) -> None:
        self.project = make_project(tmp_path, **settings)
        self.ready = tmp_path / "ready"
        self.ready.mkdir()
        self.markers: dict[str, str] = {}

    def pipeline(self, name: str, *, sleep: float, mode: str = "fork", timeout: str = "") -> str:
        marker = f"orphan-test-{uuid.uuid4().hex}-{name}"
        self.markers[name] = marker
        limit = f", timeout: {timeout}" if timeout else ""
        self.project.pipeline(
            name,
            f"""
            steps:
              s: {{type: python_script, script: stubborn.py, arguments: ["{marker}", "{self.ready}", "{sleep}", "{mode}"], allow_reuse: false{limit}}}
            """,
            {"stubborn.py": STUBBORN},
        )
        return marker

    def wait_ready(self, name: str) -> None:
        wait_until(lambda: (self.ready / self.markers[name]).exists(), timeout=30)
        assert marked(self.markers[name]), "the step and its child should be running"

    def runs(self, **filters):
        with self.project.store() as store:
            return store.list_runs(limit=0, **filters)

    def detail(self, run_id: str):
        with self.project.store() as store:
            return store.get_run_detail(run_id)


def ended(world: Stubborn, pipeline: str):
    def check():
        found = [r for r in world.runs() if r.pipeline == pipeline]
        return found and found[0].status not in ("queued", "running") and found[0]

    return wait_until(check, timeout=40)


def trigger(project: Project, schedule: str) -> None:
    result = project.cli("schedule", "trigger", schedule)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def daemon_of(daemons):
    def start(world: Stubborn) -> DaemonProcess:
        return daemons(world.project).start()

    return start


@pytest.mark.slow
def test_timeout_cancel_and_a_plain_exit_in_the_daemon_leave_no_process(tmp_path, daemon_of):
    world = Stubborn(tmp_path, shutdown_grace="0s")
    world.pipeline("timeout", sleep=600, timeout="1s")
    world.pipeline("cancel", sleep=600)
    world.pipeline("exits", sleep=0)
    world.project.schedules("""
        schedules:
          - {name: timeout, pipeline: timeout, interval: 1h}
          - {name: cancel, pipeline: cancel, interval: 1h}
          - {name: exits, pipeline: exits, interval: 1h}
    """)
    daemon = daemon_of(world)
    assert daemon.proc is not None

    trigger(world.project, "timeout")
    run = ended(world, "timeout")
    assert run.status == "failed"
    assert world.detail(run.id).attempts[0].status_reason == "timeout"
    assert marked(world.markers["timeout"]) == []

    trigger(world.project, "cancel")
    world.wait_ready("cancel")
    (run,) = [r for r in world.runs() if r.pipeline == "cancel"]
    result = world.project.cli("cancel", run.id)
    assert result.returncode == 0, result.stderr
    run = ended(world, "cancel")
    assert run.status == "canceled"
    assert marked(world.markers["cancel"]) == []

    trigger(world.project, "exits")
    run = ended(world, "exits")
    assert run.status == "completed"  # its leftovers are killed; the step still succeeded
    assert marked(world.markers["exits"]) == []

    wait_until(lambda: not zombie_children(daemon.proc.pid), timeout=5)
    assert daemon.stop() == 0


@pytest.mark.slow
def test_replace_and_shutdown_leave_no_process(tmp_path, daemon_of):
    world = Stubborn(tmp_path, shutdown_grace="0s")
    marker = world.pipeline("long", sleep=600)
    world.project.schedules("""
        schedules:
          - {name: long, pipeline: long, interval: 2s, concurrency: replace}
    """)
    daemon = daemon_of(world)
    assert daemon.proc is not None

    def replaced():
        return [r for r in world.runs() if r.status_reason == "replaced"]

    first = wait_until(replaced, timeout=30)[0]
    assert first.status == "canceled"
    assert marked(f"PIPESCHED_RUN_ID={first.id}\0") == []

    wait_until(lambda: marked(marker), timeout=20)  # a newer run's step is up
    assert daemon.stop() == 0
    assert marked(marker) == []
    assert all(r.status not in ("running",) for r in world.runs())


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["fork", "exec"])
def test_a_foreground_run_kills_what_its_step_left_behind(tmp_path: Path, mode: str):
    world = Stubborn(tmp_path)
    marker = world.pipeline("exits", sleep=0, mode=mode)
    result = world.project.cli("run", "exits", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "completed"
    assert marked(marker) == []


def test_a_foreground_timeout_leaves_no_process(tmp_path: Path):
    world = Stubborn(tmp_path)
    marker = world.pipeline("timeout", sleep=600, timeout="1s")
    result = world.project.cli("run", "timeout", "--json")
    assert result.returncode != 0
    assert json.loads(result.stdout)["status"] == "failed"
    assert marked(marker) == []


def test_ctrl_c_of_a_foreground_run_leaves_no_process(tmp_path: Path):
    world = Stubborn(tmp_path)
    marker = world.pipeline("long", sleep=600)
    env = {
        **os.environ,
        "PIPESCHED_CONFIG": str(world.project.config_path),
        "PIPESCHED_ASSERT_OFF_LOOP": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "scheduler.cli", "run", "long", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        world.wait_ready("long")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert json.loads(out)["status"] == "canceled"
    assert marked(marker) == []
