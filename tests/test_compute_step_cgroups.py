"""Under systemd with ``Delegate=yes``, every step runs in a cgroup of its own, and stopping or
ending the step kills all that is in it: even a grandchild that left the session, replaced its
whole environment and closed every descriptor, which nothing else can tie to its step.

systemd is not PID 1 here: the test makes a cgroup v2 directory, marks it delegated the way
systemd does (``trusted.delegate=1``) and starts a real daemon in it, as systemd starts a unit's
process. Root only (CI runs as root); elsewhere skipped with the reason.
"""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import pytest

from scheduler.compute.cgroups import cgroup2_mount, own_cgroup_dir
from tests.conftest import wait_until
from tests.projects import Project, make_project

# A step that leaves a grandchild nothing ties to it: a new session, SIGTERM ignored, an empty
# environment, every descriptor closed, its parent gone.
ESCAPER = """
import os, sys, time
pid_file = sys.argv[1]
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.closerange(0, 1024)
        os.execve("/usr/bin/env", ["env", "-i", "python3", "-c",
            "import os, signal, time\\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"
            f"open({pid_file!r}, 'w').write(str(os.getpid()))\\n"
            "time.sleep(600)\\n"], {})
    os._exit(0)
while not os.path.exists(pid_file) or not open(pid_file).read():
    time.sleep(0.02)
if len(sys.argv) > 2:
    time.sleep(float(sys.argv[2]))
"""


@pytest.fixture
def delegated_cgroup():
    if os.geteuid() != 0:
        pytest.skip("making a cgroup and marking it delegated needs root (CI runs as root)")
    mount = cgroup2_mount()
    if mount is None:
        pytest.skip("no cgroup v2 hierarchy on this machine")
    base = own_cgroup_dir() or mount
    path = base / f"pipesched-test-{uuid.uuid4().hex[:8]}"
    try:
        path.mkdir()
        os.setxattr(path, "trusted.delegate", b"1")
    except OSError as error:
        pytest.skip(f"cannot make a delegated cgroup here: {error}")
    try:
        yield path
    finally:
        for child in sorted(path.glob("**/"), key=lambda p: len(p.parts), reverse=True):
            kill = child / "cgroup.kill"
            if kill.exists():
                kill.write_text("1")
        for child in sorted(path.glob("**/"), key=lambda p: len(p.parts), reverse=True):
            wait_until(lambda c=child: _rmdir(c), timeout=10)


def _rmdir(path: Path) -> bool:
    try:
        path.rmdir()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def escaping_project(tmp_path: Path, arguments: list[str], **step: object) -> Project:
    """A project whose schedule ``escape`` runs ``ESCAPER`` with ``arguments``."""
    project = make_project(tmp_path)
    project.pipeline(
        "escape",
        {
            "steps": {
                "s": {
                    "type": "python_script",
                    "script": "escape.py",
                    "arguments": arguments,
                    "allow_reuse": False,
                    **step,
                }
            }
        },
        {"escape.py": ESCAPER},
    )
    project.schedules("schedules:\n  - {name: escape, pipeline: escape, interval: 100d}\n")
    return project


def step_cgroups(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("step-*") if p.is_dir())


@pytest.mark.slow
@pytest.mark.parametrize("ending", ["exits", "times out"])
def test_a_step_cgroup_takes_every_process_of_the_step_with_it(
    tmp_path, daemons, delegated_cgroup, ending
):
    pid_file = tmp_path / "grandchild.pid"
    hold = ["600"] if ending == "times out" else []
    project = escaping_project(tmp_path, [str(pid_file), *hold], timeout="3s")
    daemon = daemons(project, cgroup=delegated_cgroup).start()
    assert daemon.events("step_cgroups")  # it found the delegation
    assert project.cli("schedule", "trigger", "escape").returncode == 0

    grandchild = int(wait_until(lambda: pid_file.exists() and pid_file.read_text(), timeout=30))
    (step_cgroup,) = wait_until(lambda: step_cgroups(delegated_cgroup), timeout=10)
    # The kernel puts it in its step's cgroup, however it detached.
    assert str(grandchild) in (step_cgroup / "cgroup.procs").read_text().split()

    with project.store() as store:
        run = wait_until(
            lambda: next(
                (
                    r
                    for r in store.list_runs(limit=5)
                    if r.status.value not in ("queued", "running")
                ),
                None,
            ),
            timeout=30,
        )
    expected = ("completed", None) if ending == "exits" else ("failed", "step failed: s")
    assert (run.status.value, run.status_reason) == expected
    # Gone with its step, while the daemon runs on, and its cgroup removed.
    wait_until(lambda: not alive(grandchild), timeout=10)
    wait_until(lambda: not step_cgroups(delegated_cgroup), timeout=10)
    assert daemon.proc.poll() is None
    assert daemon.stop() == 0


@pytest.mark.slow
def test_a_killed_daemons_step_cgroups_are_cleared_at_the_next_start(
    tmp_path, daemons, delegated_cgroup
):
    pid_file = tmp_path / "grandchild.pid"
    project = escaping_project(tmp_path, [str(pid_file), "600"])
    first = daemons(project, cgroup=delegated_cgroup).start()
    assert project.cli("schedule", "trigger", "escape").returncode == 0
    grandchild = int(wait_until(lambda: pid_file.exists() and pid_file.read_text(), timeout=30))
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(timeout=10)
    assert alive(grandchild)  # nothing stopped it: the daemon died

    second = daemons(project, cgroup=delegated_cgroup).start()
    (event,) = second.events("step_cgroups")
    assert event["cleared"] == 1
    wait_until(lambda: not alive(grandchild), timeout=10)
    assert not step_cgroups(delegated_cgroup)
    assert second.stop() == 0
