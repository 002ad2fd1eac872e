"""The systemd files as systemd reads them: `systemd-analyze verify`, the security score, sysusers
and tmpfiles in a scratch root, and the unit's settings against the shipped config.

systemd need not run as PID 1: verify, security --offline and --root all work without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from scheduler.cli import COMMANDS
from scheduler.definitions.config import load_config
from tests.conftest import wait_until
from tests.projects import make_project, shipped

REPO = Path(__file__).resolve().parents[1]
SYSTEMD = REPO / "systemd"
UNIT = SYSTEMD / "pipesched.service"
# The bound this unit is held to; `systemd-analyze security` prints 9.6 for a bare unit. The
# unit scores 1.6: 0.2 of it is ProtectControlGroups=no, the price of a cgroup per step
# (Delegate=yes needs the cgroup tree writable).
MAX_EXPOSURE = 1.6

ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None,
    reason="systemd-analyze not installed (Debian package `systemd`; .ci/run adds it)",
)


def unit_settings(text: str) -> dict[str, dict[str, list[str]]]:
    """section -> key -> values in order (a key may repeat, e.g. SystemCallFilter=)."""
    sections: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        sections[section][key.strip()].append(value.strip())
    return sections


SERVICE = unit_settings(UNIT.read_text())["Service"]


def one(key: str) -> str:
    values = SERVICE[key]
    assert len(values) == 1, f"{key}= set {len(values)} times"
    return values[0]


def verifiable_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this machine's `pipesched` (verify insists it exists)."""
    binary = shutil.which("pipesched") or str(Path(sys.executable).with_name("pipesched"))
    assert Path(binary).exists(), "pipesched is not installed in this environment"
    text = UNIT.read_text().replace("/opt/pipesched/venv/bin/pipesched", binary)
    copy = tmp_path / "pipesched.service"
    copy.write_text(text)
    return copy


@needs_analyze
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    copy = verifiable_copy(tmp_path)
    result = subprocess.run(
        [ANALYZE, "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    complaints = [line for line in result.stderr.splitlines() if "pipesched" in line]
    assert result.returncode == 0, result.stderr
    assert complaints == []


@needs_analyze
def test_security_exposure_is_low(tmp_path: Path) -> None:
    copy = verifiable_copy(tmp_path)
    result = subprocess.run(
        [ANALYZE, "security", "--offline=true", "--no-pager", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for pipesched\.service: ([0-9.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    exposure = float(match.group(1))
    print(f"systemd-analyze security exposure: {exposure}")
    assert exposure <= MAX_EXPOSURE, result.stdout


def test_notify_type_with_watchdog_and_reload() -> None:
    assert one("Type") == "notify"
    assert one("NotifyAccess") == "main"
    assert one("WatchdogSec") == "30s"
    assert one("ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one("Restart") == "on-failure"


def test_exec_start_runs_the_daemon_on_the_installed_config() -> None:
    argv = one("ExecStart").split()
    assert argv == [
        "/opt/pipesched/venv/bin/pipesched",
        "daemon",
        "-c",
        "/etc/pipesched/pipesched.yaml",
    ]
    readme = (SYSTEMD / "README.md").read_text()
    assert "python3 -m venv /opt/pipesched/venv" in readme


def test_stop_timeout_is_shutdown_grace_plus_15s() -> None:
    """DESIGN: TimeoutStopSec = shutdown_grace + 15 s, against the shipped config's grace."""
    grace = load_config(shipped("config", "pipesched.yaml")).shutdown_grace
    assert one("TimeoutStopSec") == f"{grace + 15:g}s"
    assert one("KillMode") == "mixed"


def test_network_stays_available_to_steps() -> None:
    assert "PrivateNetwork" not in SERVICE
    assert "IPAddressDeny" not in SERVICE
    assert set(one("RestrictAddressFamilies").split()) >= {"AF_UNIX", "AF_INET", "AF_INET6"}


def test_writable_paths_are_state_logs_and_datastores() -> None:
    assert one("ProtectSystem") == "strict"
    assert one("StateDirectory") == "pipesched"
    assert one("LogsDirectory") == "pipesched"
    assert one("ConfigurationDirectory") == "pipesched"
    assert SERVICE["ReadWritePaths"] == ["-/srv/pipesched"]


def test_unit_user_is_the_one_sysusers_creates(tmp_path: Path) -> None:
    """systemd-sysusers, on a scratch root, creates the User= the unit runs as."""
    sysusers = shutil.which("systemd-sysusers")
    if sysusers is None:
        pytest.skip("systemd-sysusers not installed (Debian package `systemd`)")
    (tmp_path / "etc").mkdir()
    conf = tmp_path / "etc" / "sysusers.d"
    conf.mkdir()
    shutil.copy(SYSTEMD / "pipesched.sysusers.conf", conf / "pipesched.conf")
    subprocess.run([sysusers, f"--root={tmp_path}"], check=True, capture_output=True, timeout=60)
    passwd = {
        line.split(":")[0]: line.split(":")
        for line in (tmp_path / "etc" / "passwd").read_text().splitlines()
    }
    assert one("User") in passwd
    assert one("Group") in (tmp_path / "etc" / "group").read_text()
    _, _, _, _, _, home, shell = passwd[one("User")]
    assert home == f"/var/lib/{one('StateDirectory')}"
    assert shell == "/usr/sbin/nologin"


def test_tmpfiles_creates_the_datastore_root_for_the_user(tmp_path: Path) -> None:
    tmpfiles = shutil.which("systemd-tmpfiles")
    sysusers = shutil.which("systemd-sysusers")
    if tmpfiles is None or sysusers is None:
        pytest.skip("systemd-tmpfiles not installed (Debian package `systemd`)")
    for sub, name in (
        ("sysusers.d", "pipesched.sysusers.conf"),
        ("tmpfiles.d", "pipesched.tmpfiles.conf"),
    ):
        (tmp_path / "etc" / sub).mkdir(parents=True)
        shutil.copy(SYSTEMD / name, tmp_path / "etc" / sub / "pipesched.conf")
    subprocess.run([sysusers, f"--root={tmp_path}"], check=True, capture_output=True, timeout=60)
    subprocess.run(
        [tmpfiles, f"--root={tmp_path}", "--create"], check=True, capture_output=True, timeout=60
    )
    uid = next(
        int(line.split(":")[2])
        for line in (tmp_path / "etc" / "passwd").read_text().splitlines()
        if line.startswith("pipesched:")
    )
    srv = tmp_path / "srv" / "pipesched"
    assert srv.is_dir()
    assert srv.stat().st_uid == uid
    assert srv.stat().st_mode & 0o777 == 0o750


def test_readme_config_edit_yields_a_valid_install_config(tmp_path: Path) -> None:
    """Step 3 of systemd/README.md, run as written on a copy: the config points at
    /var/lib/pipesched and at the pipelines copied next to it."""
    readme = (SYSTEMD / "README.md").read_text()
    match = re.search(r"^(sed -i .*?pipesched\.yaml)$", readme, re.M | re.S)
    assert match, "README step 3 has no sed line"
    etc = tmp_path / "etc" / "pipesched"
    etc.mkdir(parents=True)
    shutil.copy(shipped("config", "pipesched.yaml"), etc)
    shutil.copy(shipped("config", "schedules.yaml"), etc)
    shutil.copytree(shipped("pipelines"), etc / "pipelines")
    command = match.group(1).replace("/etc/pipesched/", f"{etc}/")
    subprocess.run(["bash", "-c", command], check=True, timeout=30)
    config = load_config(etc / "pipesched.yaml")
    assert config.state_dir == Path("/var/lib/pipesched")
    assert config.pipelines_dir == etc / "pipelines"


def test_exec_start_line_speaks_the_notify_protocol(tmp_path: Path) -> None:
    """RELIABILITY "How to test": the unit's ExecStart run by hand with NOTIFY_SOCKET,
    WATCHDOG_USEC and JOURNAL_STREAM set — READY, pings, reload, stop, journald priorities."""
    if "daemon" not in COMMANDS:
        pytest.skip("`pipesched daemon` is not there yet")
    project = make_project(tmp_path / "p")
    notify_path = str(tmp_path / "notify.sock")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(notify_path)
    receiver.setblocking(False)
    messages: list[str] = []

    def drain() -> list[str]:
        with contextlib.suppress(BlockingIOError):
            while True:
                messages.append(receiver.recv(4096).decode())
        return messages

    def received(field: str, after: int = 0) -> int | None:
        """1 + the index of the first message from ``after`` on that has ``field``, or None."""
        drain()
        hits = [i for i, m in enumerate(messages) if i >= after and field in m.split("\n")]
        return hits[0] + 1 if hits else None  # +1: a true value even for index 0

    argv = one("ExecStart").split()
    argv[0] = shutil.which("pipesched") or str(Path(sys.executable).with_name("pipesched"))
    argv[argv.index("-c") + 1] = str(project.config_path)
    log_path = tmp_path / "journal.log"
    with open(log_path, "w") as log_file:
        st = os.fstat(log_file.fileno())
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "NOTIFY_SOCKET": notify_path,
            "WATCHDOG_USEC": "400000",
            "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}",
            "PIPESCHED_ASSERT_OFF_LOOP": "1",
        }
        proc = subprocess.Popen(argv, env=env, stdout=log_file, stderr=log_file, cwd=tmp_path)
    try:
        ready = wait_until(lambda: received("READY=1"), timeout=30, message="READY=1")
        wait_until(lambda: drain()[ready:].count("WATCHDOG=1") >= 2, timeout=10, message="2 pings")
        proc.send_signal(signal.SIGHUP)
        reloading = wait_until(lambda: received("RELOADING=1", ready), timeout=15)
        wait_until(lambda: received("READY=1", reloading), timeout=15, message="READY after reload")
        proc.send_signal(signal.SIGTERM)
        wait_until(lambda: received("STOPPING=1"), timeout=15)
        assert proc.wait(int(one("TimeoutStopSec").rstrip("s"))) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        receiver.close()
    assert any(m.startswith("STATUS=") or "\nSTATUS=" in m for m in messages)
    lines = [line for line in log_path.read_text().splitlines() if line]
    assert lines, "the daemon logged nothing"
    for line in lines:
        assert re.match(r"<[0-7]>", line), line
        json.loads(line[3:])
