"""Step processes on this machine: argv only, each in its own process group, output straight to a
log file (the daemon never buffers a step's output, so a step that prints gigabytes cannot hurt it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from scheduler.core.procinfo import process_start_ticks

#: Variables a step must never inherit: they belong to the daemon's own systemd unit.
PRIVATE_ENV_PREFIXES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def step_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """The daemon's environment minus its systemd variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(PRIVATE_ENV_PREFIXES)}
    env.update(extra)
    return env


@dataclass
class Exit:
    """How a step process ended."""

    exit_code: int
    timed_out: bool = False
    stopped: bool = False  # ended by stop(): cancel, replace or shutdown


class LocalProcess:
    """A running step process and its group."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc
        self.pid = proc.pid
        self.pgid = proc.pid  # start_new_session makes the child its group's (and session's) leader
        self.start_ticks = process_start_ticks(proc.pid)
        self._stopping = False

    @classmethod
    async def start(
        cls, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], log_path: Path
    ) -> LocalProcess:
        """Start ``argv`` (never through a shell) with stdout and stderr appended to ``log_path``."""
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env=dict(env),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=fd,
                stderr=fd,
                start_new_session=True,
            )
        finally:
            os.close(fd)
        return cls(proc)

    async def wait(self, timeout: float | None, kill_grace: float) -> Exit:
        """Wait for the process; past ``timeout`` stop its group. Always reaps leftovers of the
        group (grandchildren a step forgot) once the leader is gone."""
        timed_out = False
        try:
            await asyncio.wait_for(asyncio.shield(self._proc.wait()), timeout)
        except TimeoutError:
            timed_out = True
            await self.stop(kill_grace)
        code = await self._proc.wait()
        self._signal_group(signal.SIGKILL)
        return Exit(exit_code=code, timed_out=timed_out, stopped=self._stopping and not timed_out)

    async def stop(self, kill_grace: float) -> None:
        """SIGTERM to the group, SIGKILL to the group ``kill_grace`` seconds later."""
        self._stopping = True
        self._signal_group(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._proc.wait()), kill_grace)
        # killpg, not kill: steps may fork, and a child that ignored SIGTERM must go too.
        self._signal_group(signal.SIGKILL)

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, sig)
