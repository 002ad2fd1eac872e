"""A step whose child leaves the session with ``setsid()`` and ignores SIGTERM, and whose
grandchild does the same in a session of its own with its output sent to /dev/null: however a
real daemon ends the step (its timeout, ``pipesched cancel``, a ``replace`` fire over it, the
daemon's own SIGTERM), none of the three processes is alive afterwards and none is left a
zombie. The processes are found by the pids the step wrote down, checked in /proc with their
start times (a reused pid is not mistaken for a survivor)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from scheduler.core.procinfo import is_alive, process_start_ticks, process_table
from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess
from tests.projects import Project, make_project

# argv: PIDS_DIR. Writes PIDS_DIR/<run id>.json with the pids of the step, its child and its
# grandchild once all three are set up, then sleeps (so does each descendant, SIGTERM ignored).
STUBBORN = """
import json, os, signal, sys, time
pids_dir = sys.argv[1]
read_end, write_end = os.pipe()
if os.fork() == 0:
    os.setsid()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if os.fork() == 0:
        os.setsid()  # not a session leader yet: a second session of its own
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        quiet = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(quiet, fd)  # no longer holds the step's output pipe
        os.write(write_end, b"%d\\n" % os.getpid())
        time.sleep(600)
        os._exit(0)
    os.write(write_end, b"%d\\n" % os.getpid())
    time.sleep(600)
    os._exit(0)
os.close(write_end)
with os.fdopen(read_end, "rb") as pipe:
    descendants = [int(pipe.readline()), int(pipe.readline())]
path = os.path.join(pids_dir, os.environ["PIPESCHED_RUN_ID"] + ".json")
with open(path + ".tmp", "w") as out:
    json.dump([os.getpid(), *descendants], out)
os.replace(path + ".tmp", path)
print("set up", flush=True)
time.sleep(600)
"""


@dataclass(frozen=True)
class StepProcesses:
    """The step, its child and its grandchild: (pid, start ticks) each."""

    processes: tuple[tuple[int, int | None], ...]

    def alive(self) -> list[int]:
        return [pid for pid, ticks in self.processes if is_alive(pid, ticks)]


class World:
    def __init__(self, tmp_path: Path, *, step_timeout: str = "") -> None:
        self.project: Project = make_project(tmp_path / "p", shutdown_grace="0s")
        self.pids = tmp_path / "pids"
        self.pids.mkdir()
        limit = f", timeout: {step_timeout}" if step_timeout else ""
        self.project.pipeline(
            "stubborn",
            f"""
            steps:
              s: {{type: python_script, script: stubborn.py, arguments: ["{self.pids}"], allow_reuse: false{limit}}}
            """,
            {"stubborn.py": STUBBORN},
        )
        self.project.schedules("""
            schedules:
              - {name: stubborn, pipeline: stubborn, interval: 1h, concurrency: replace}
        """)

    def trigger(self) -> None:
        result = self.project.cli("schedule", "trigger", "stubborn")
        assert result.returncode == 0, result.stderr

    def runs(self) -> list:
        with self.project.store() as store:
            return sorted(store.list_runs(limit=0), key=lambda r: r.created_at)

    def set_up(self, run_id: str, timeout: float = 20) -> StepProcesses:
        path = self.pids / f"{run_id}.json"
        wait_until(path.exists, timeout=timeout, message=f"run {run_id}'s step set itself up")
        processes = tuple((pid, process_start_ticks(pid)) for pid in json.loads(path.read_text()))
        step = StepProcesses(processes)
        assert len(step.alive()) == 3, "the step, its child and its grandchild all run"
        return step

    def newest_run_set_up(self, count: int) -> tuple[str, StepProcesses]:
        runs = wait_until(lambda: len(self.runs()) >= count and self.runs(), timeout=20)
        run_id = runs[count - 1].id
        return run_id, self.set_up(run_id)

    def ended(self, run_id: str):
        def check():
            (run,) = [r for r in self.runs() if r.id == run_id]
            return run.status not in ("queued", "running") and run

        return wait_until(check, timeout=30)


def gone(step: StepProcesses) -> None:
    wait_until(lambda: not step.alive(), timeout=15, message="no process of the step is left")


def no_zombies(daemon: DaemonProcess) -> None:
    assert daemon.proc is not None
    pid = daemon.proc.pid

    def reaped() -> bool:
        return not [p for p in process_table().values() if p.ppid == pid and p.zombie]

    wait_until(reaped, timeout=10, message="the daemon reaped every process of the step")


@pytest.fixture
def start(daemons):
    def start_daemon(world: World) -> DaemonProcess:
        daemon: DaemonProcess = daemons(world.project).start()
        return daemon

    return start_daemon


def test_a_step_timeout_leaves_no_process(tmp_path, start):
    world = World(tmp_path, step_timeout="4s")
    daemon = start(world)
    world.trigger()
    run_id, step = world.newest_run_set_up(1)
    run = world.ended(run_id)
    assert run.status == "failed"
    gone(step)
    no_zombies(daemon)
    assert daemon.stop() == 0


def test_cancel_leaves_no_process(tmp_path, start):
    world = World(tmp_path)
    daemon = start(world)
    world.trigger()
    run_id, step = world.newest_run_set_up(1)
    result = world.project.cli("cancel", run_id)
    assert result.returncode == 0, result.stderr
    run = world.ended(run_id)
    assert (run.status, run.status_reason) == ("canceled", "canceled by user")
    gone(step)
    no_zombies(daemon)
    assert daemon.stop() == 0


def test_a_replace_fire_leaves_no_process_of_the_run_it_replaced(tmp_path, start):
    world = World(tmp_path)
    daemon = start(world)
    world.trigger()
    first_id, first = world.newest_run_set_up(1)
    world.trigger()  # the schedule's policy is replace: this fire cancels the first run
    run = world.ended(first_id)
    assert (run.status, run.status_reason) == ("canceled", "replaced")
    gone(first)
    second_id, second = world.newest_run_set_up(2)
    assert second_id != first_id and second.alive()
    no_zombies(daemon)
    assert daemon.stop() == 0
    gone(second)


def test_daemon_shutdown_leaves_no_process(tmp_path, start):
    world = World(tmp_path)
    daemon = start(world)
    world.trigger()
    run_id, step = world.newest_run_set_up(1)
    assert daemon.stop() == 0
    assert step.alive() == []  # gone by the time the daemon has exited
    run = world.ended(run_id)
    assert (run.status, run.status_reason) == ("canceled", "shutdown")
