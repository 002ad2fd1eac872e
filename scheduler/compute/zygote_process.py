"""The daemon's side of a zygote (``zygote.py``): starting it, reading that it is ready,
asking it for a step, noticing that it died or broke, and waiting for a forked step, which is
this process's child (``ForkedChild``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from scheduler.compute import zygote, zygote_step
from scheduler.core.lazylog import lazy_logger

log = lazy_logger("scheduler.compute.warm")

ZYGOTE_PROGRAM = zygote.__file__
ENVIRONMENT_ROOM_BYTES = 64 * 1024
REQUEST_TIMEOUT = 5.0  # a fork request unanswered this long: the zygote is broken
START_TIMEOUT = 600.0  # imports that take longer than this: the zygote is broken
QUIET_AFTER_CHANGE = 2.0  # seconds without file changes before a new zygote starts
MAX_RESTART_PAUSE = 300.0


class ZygoteUnavailable(Exception):
    """The zygote could not fork this step: spawn it."""


class ForkedChild:
    """A forked step, re-parented to this process: waited for by its pid like a spawned one
    (the subset of ``asyncio.subprocess.Process`` that ``LocalProcess`` uses)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        loop = asyncio.get_running_loop()
        self._ended: asyncio.Future[int] = loop.create_future()
        self._pidfd = os.pidfd_open(pid)
        loop.add_reader(self._pidfd, self._check)
        self._check()

    def _check(self) -> None:
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # not ours after all: nothing to wait for
            pid, status = self.pid, 255 << 8
        if pid == 0:
            return
        asyncio.get_running_loop().remove_reader(self._pidfd)
        os.close(self._pidfd)
        self.returncode = os.waitstatus_to_exitcode(status)
        self._ended.set_result(self.returncode)

    async def wait(self) -> int:
        return await asyncio.shield(self._ended)


@dataclass
class Zygote:
    """One warm process for one compute target, on one interpreter."""

    target: str
    interpreter: str
    modules: tuple[str, ...]
    env: dict[str, str]
    log_path: Path
    state: str = "stopped"  # stopped | starting | ready | broken | stale
    error: str | None = None
    failures: int = 0
    retry_at: float = 0.0
    forks: int = 0
    folders: list[str] = field(default_factory=list)
    stale_requested: bool = False  # set by the file watch's thread, acted on by ``poll``
    learn_dir: Path | None = None  # ``warm_imports: auto``: where forked steps note their imports
    _proc: subprocess.Popen[bytes] | None = None
    _channel: socket.socket | None = None
    _started_at: float = 0.0
    _lock: asyncio.Lock | None = None
    _lock_loop: asyncio.AbstractEventLoop | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Start the process; it imports the modules and says when it is ready."""
        self.close()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            # Room in the zygote's environment block for each step's variables
            # (``zygote.show_environment``).
            env = {**self.env, zygote_step.ENVIRONMENT_ROOM: " " * ENVIRONMENT_ROOM_BYTES}
            self._proc = subprocess.Popen(
                [
                    self.interpreter,
                    ZYGOTE_PROGRAM,
                    str(theirs.fileno()),
                    *(["--tolerant"] if self.learn_dir is not None else []),
                    *self.modules,
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=fd,
                pass_fds=(theirs.fileno(),),
                process_group=0,  # a terminal's Ctrl-C is for the steps, not for the zygote
            )
        except OSError as exc:
            ours.close()
            self._broken(f"could not start: {exc}")
            return
        finally:
            os.close(fd)
            theirs.close()
        self._channel = ours
        self.state = "starting"
        self.error = None
        self._started_at = time.monotonic()

    def poll(self) -> str:
        """The state, after reading a ready message that has arrived or noticing a death."""
        if self.stale_requested:
            self.stale_requested = False
            self.mark_stale()
        if self.state in ("starting", "ready") and self._proc is not None:
            if self._proc.poll() is not None and (self.state == "ready" or not self._readable()):
                self._broken(f"exited with {self._proc.returncode}{self._log_tail()}")
            elif self.state == "starting":
                if self._readable():
                    self._read_ready()
                elif time.monotonic() - self._started_at > START_TIMEOUT:
                    self._broken(f"not ready after {START_TIMEOUT:g}s")
        return self.state

    async def wait_ready(self) -> bool:
        """Wait while it starts; True once it is ready. Waiters take turns (the loop keeps one
        reader per descriptor), looking again at least every second: that notices a death."""
        while self.poll() == "starting":
            async with self._turn():
                if self.poll() != "starting" or self._channel is None:
                    break
                with contextlib.suppress(TimeoutError):
                    await _readable(self._channel, 1.0)
        return self.state == "ready"

    def _turn(self) -> asyncio.Lock:
        """One conversation with the zygote at a time (a lock of the running loop's)."""
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    async def fork(
        self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], log_fd: int,
        cgroup_procs: str | None,
    ) -> int:  # fmt: skip
        """Fork one step; its pid. Raises ``ZygoteUnavailable`` (and marks the zygote broken)
        when the zygote does not answer. One request at a time; the loop runs on while the
        zygote forks."""
        async with self._turn():
            if self.poll() != "ready" or self._channel is None:
                raise ZygoteUnavailable(self.state)
            channel = self._channel
            request = {
                "argv": list(argv),
                "cwd": str(cwd),
                "env": dict(env),
                "cgroup": cgroup_procs,
                "learn": str(self.learn_dir) if self.learn_dir is not None else None,
            }
            try:
                channel.settimeout(REQUEST_TIMEOUT)
                zygote.send(channel, request, [log_fd])
                await _readable(channel, REQUEST_TIMEOUT)
                reply, fds = zygote.receive(channel)
            except (OSError, ValueError, EOFError, TimeoutError) as exc:
                self._broken(f"fork request failed: {exc!r}")
                raise ZygoteUnavailable(self.error) from exc
        for extra in fds:
            os.close(extra)
        if reply is None:
            self._broken(f"closed its socket{self._log_tail()}")
            raise ZygoteUnavailable(self.error)
        if "pid" not in reply:
            raise ZygoteUnavailable(str(reply.get("error")))
        self.forks += 1
        return int(reply["pid"])

    def mark_stale(self) -> None:
        """A module's file changed on disk: no more forks from this process."""
        if self.state in ("starting", "ready"):
            self.close()
            self.state = "stale"
            self.retry_at = time.monotonic() + QUIET_AFTER_CHANGE
            log.info("zygote_stale", target=self.target)
        elif self.state == "stale":
            self.retry_at = time.monotonic() + QUIET_AFTER_CHANGE

    def due_for_restart(self) -> bool:
        return self.state in ("broken", "stale", "stopped") and time.monotonic() >= self.retry_at

    def resident_bytes(self) -> int | None:
        proc = self._proc
        return resident_bytes(proc.pid) if proc is not None and self.state == "ready" else None

    def close(self) -> None:
        """Stop the process (its spare step, if any, sees the socket close and exits)."""
        channel, proc = self._channel, self._proc
        self._channel, self._proc = None, None
        if channel is not None:
            with contextlib.suppress(RuntimeError):  # no loop: no reader either
                asyncio.get_running_loop().remove_reader(channel.fileno())
            channel.close()
        if proc is not None:
            # SIGKILL at once: it holds nothing to save, and its own exit would free a heap
            # of hundreds of megabytes while the daemon's loop waits.
            with contextlib.suppress(OSError):
                proc.kill()
            proc.wait()
        if self.state in ("starting", "ready"):
            self.state = "stopped"

    def _readable(self) -> bool:
        if self._channel is None:
            return False
        return bool(select.select([self._channel], [], [], 0)[0])

    def _read_ready(self) -> None:
        assert self._channel is not None
        try:
            self._channel.settimeout(REQUEST_TIMEOUT)
            message, fds = zygote.receive(self._channel)
        except (OSError, ValueError, EOFError) as exc:
            self._broken(f"unreadable start message: {exc}")
            return
        for extra in fds:
            os.close(extra)
        if message is None:
            self._broken(f"exited while importing{self._log_tail()}")
        elif not message.get("ready"):
            self._broken(str(message.get("error")))
        else:
            self.state, self.failures = "ready", 0
            self.folders = [str(f) for f in message.get("dirs", [])]
            threads = int(message.get("threads", 1))
            if threads > 1:
                log.warning(
                    "zygote_threads",
                    target=self.target,
                    threads=threads,
                    hint="a warm module started threads; forked steps do not get them",
                )
            log.info("zygote_ready", target=self.target, pid=self.pid, modules=list(self.modules))

    def _broken(self, why: str) -> None:
        self.close()
        self.state, self.error = "broken", why
        self.failures += 1
        self.retry_at = time.monotonic() + min(MAX_RESTART_PAUSE, 2.0 ** (self.failures - 1))
        log.warning("zygote_broken", target=self.target, error=why, failures=self.failures)

    def _log_tail(self) -> str:
        try:
            tail = self.log_path.read_bytes()[-2000:].decode(errors="replace").strip()
        except OSError:
            return ""
        return f": {tail.splitlines()[-1]}" if tail else ""


async def _readable(channel: socket.socket, timeout: float) -> None:
    """Until ``channel`` can be read; ``TimeoutError`` after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    readable: asyncio.Future[None] = loop.create_future()
    fd = channel.fileno()
    loop.add_reader(fd, _settle, readable)
    try:
        await asyncio.wait_for(readable, timeout)
    finally:
        if channel.fileno() == fd:  # closed meanwhile: the number may be another's now
            loop.remove_reader(fd)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def resident_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
