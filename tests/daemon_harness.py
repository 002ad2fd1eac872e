"""A real ``pipesched daemon`` subprocess for tests: started with a real notify socket (tests wait
on READY=1 as systemd would), controlled with real signals, optionally on a test clock."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scheduler.core.loopguard import ENV_VAR as ASSERT_OFF_LOOP
from scheduler.services.daemon_http import socket_path
from tests.conftest import wait_until
from tests.projects import Project


class DaemonProcess:
    def __init__(
        self,
        project: Project,
        *,
        env: dict[str, str] | None = None,
        clock_file: Path | None = None,
        cgroup: Path | None = None,
    ) -> None:
        self.project = project
        self.cgroup = cgroup  # a cgroup v2 directory the daemon starts in, as systemd would
        self.extra_env = dict(env or {})
        self.clock_file = clock_file
        self.proc: subprocess.Popen | None = None
        self.messages: list[str] = []
        self.log_path = project.root / f"daemon-{time.monotonic_ns()}.log"
        self._sock: socket.socket | None = None

    # -- life -----------------------------------------------------------------------------

    def start(self, *, wait_ready: bool = True, timeout: float = 20) -> DaemonProcess:
        # A short folder of its own: the project's may be deeper than a socket path can be.
        notify = Path(tempfile.mkdtemp(prefix="psn-")) / "notify.sock"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(notify))
        self._sock.settimeout(0.05)
        env = {
            **os.environ,
            "NOTIFY_SOCKET": str(notify),
            "PIPESCHED_TESTING": "1",
            "PIPESCHED_CONFIG": str(self.project.config_path),
            # Any store call or source hash made on the daemon's event loop fails loudly.
            ASSERT_OFF_LOOP: "1",
        }
        env.pop("WATCHDOG_USEC", None)
        if self.clock_file is not None:
            env["PIPESCHED_TEST_CLOCK"] = f"file:{self.clock_file}"
        env.update(self.extra_env)
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scheduler.cli", "daemon"],
            env=env,
            cwd=self.project.root,
            stdout=subprocess.DEVNULL,
            stderr=open(self.log_path, "ab"),  # noqa: SIM115
            preexec_fn=self._join_cgroup if self.cgroup is not None else None,
        )
        if wait_ready:
            self.wait_message("READY=1", timeout=timeout)
            self.ready_after = time.monotonic() - self.started
        return self

    def _join_cgroup(self) -> None:
        """In the child before exec: move into ``cgroup``, as systemd starts a unit's process."""
        assert self.cgroup is not None
        fd = os.open(self.cgroup / "cgroup.procs", os.O_WRONLY)
        try:
            os.write(fd, str(os.getpid()).encode())
        finally:
            os.close(fd)

    def poll_messages(self) -> list[str]:
        assert self._sock is not None
        while True:
            try:
                self.messages.append(self._sock.recv(65536).decode())
            except (TimeoutError, BlockingIOError):
                return self.messages

    def wait_message(self, needle: str, timeout: float = 20) -> str:
        def found():
            exited = self.proc is not None and self.proc.poll() is not None
            message = next((m for m in self.poll_messages() if needle in m), None)
            if message is None and exited:
                raise AssertionError(f"daemon exited {self.proc.returncode}:\n{self.log()}")
            return message

        return wait_until(
            found, timeout=timeout, message=f"no {needle!r} from the daemon:\n{self.log()}"
        )

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill9(self) -> None:
        self.signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def wait_exit(self, timeout: float = 30) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self._sock is not None:
            bound = Path(self._sock.getsockname())
            self._sock.close()
            shutil.rmtree(bound.parent, ignore_errors=True)
            self._sock = None

    # -- reading ---------------------------------------------------------------------------

    def log(self) -> str:
        try:
            return self.log_path.read_text()
        except OSError:
            return ""

    def events(self, name: str) -> list[dict]:
        found = []
        for line in self.log().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("event") == name:
                found.append(record)
        return found


def set_clock(path: Path, offset_seconds: float, rate: float = 1.0) -> None:
    """Shift (and speed) the daemon's test clock; takes effect at once, even while it runs."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{offset_seconds} {rate}")
    tmp.replace(path)


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP to the daemon over its Unix socket."""

    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=30)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(str(self._path))


def daemon_request(project: Project, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One request to the daemon of ``project`` over its unix socket, whatever the status:
    (status, decoded JSON body or None). ``path`` is absolute, e.g. ``/api/v1/schedules``."""
    conn = UnixHTTPConnection(socket_path(project.config().state_dir))
    try:
        data = None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None
    finally:
        conn.close()
