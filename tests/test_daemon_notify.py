"""The daemon as systemd starts it: the unit's ExecStart with NOTIFY_SOCKET and WATCHDOG_USEC set,
read on a real unix datagram socket."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess
from tests.projects import make_project


def test_ready_status_watchdog_and_stopping_reach_the_notify_socket(tmp_path: Path):
    project = make_project(tmp_path)
    project.pipeline(
        "tick", "steps:\n  s: {type: python_script, script: s.py}\n", {"s.py": "pass\n"}
    )
    project.schedules("schedules:\n  - {name: daily, pipeline: tick, cron: '0 3 * * *'}\n")
    daemon = DaemonProcess(project, env={"WATCHDOG_USEC": "200000"})
    try:
        daemon.start()
        ready = daemon.wait_message("READY=1")
        assert "STATUS=1 schedules; next daily in" in ready
        wait_until(lambda: sum("WATCHDOG=1" in m for m in daemon.poll_messages()) >= 3, timeout=5)
        assert daemon.stop() == 0
        daemon.wait_message("STOPPING=1", timeout=5)
    finally:
        daemon.close()


def test_step_processes_never_see_the_daemons_notify_socket(tmp_path: Path):
    project = make_project(tmp_path)
    out = tmp_path / "env.txt"
    project.pipeline(
        "env",
        "steps:\n  s: {type: python_script, script: s.py, allow_reuse: false}\n",
        {
            "s.py": f"import os; open('{out}', 'w').write(repr(sorted(k for k in os.environ "
            "if k in ('NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID'))))\n"
        },
    )
    project.schedules("schedules:\n  - {name: once, pipeline: env, interval: 1h}\n")
    daemon = DaemonProcess(project, env={"WATCHDOG_USEC": "5000000"})
    try:
        daemon.start()
        assert project.cli("schedule", "trigger", "once").returncode == 0
        wait_until(lambda: out.exists() and out.read_text(), timeout=10)
        assert out.read_text() == "[]"
    finally:
        daemon.close()
