"""Step processes on this machine: argv only, each in its own session and process group, its output
into a log file capped at ``max_log_bytes`` (``logcap.py``: the daemon never buffers a step's
output, so a step that prints gigabytes cannot hurt it), and every process it leaves behind
killed and reaped when it ends or is stopped (``reaper.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from scheduler.compute import reaper
from scheduler.compute.cgroups import StepCgroup, delegated_tree
from scheduler.compute.logcap import CappedLog
from scheduler.compute.warm import active_pool
from scheduler.compute.zygote_process import ForkedChild, Zygote, ZygoteUnavailable
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
    """A running step process, its group, and whatever it starts."""

    LOG_DRAIN = 5.0  # after the step's processes are gone: how long its log may take to end

    def __init__(
        self,
        proc: asyncio.subprocess.Process | ForkedChild,
        log: CappedLog,
        env: Mapping[str, str],
        cgroup: StepCgroup | None = None,
    ) -> None:
        self._proc = proc
        self.forked = isinstance(proc, ForkedChild)
        self._log = log
        self.pid = proc.pid
        self.pgid = proc.pid  # start_new_session makes the child its group's (and session's) leader
        self.start_ticks = process_start_ticks(proc.pid)
        self.processes = reaper.StepProcesses.of(proc.pid, dict(env), log.pipe_id)
        self._stopping = False
        reaper.add_leader(proc.pid)
        self.cgroup = cgroup

    @classmethod
    async def start(
        cls,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        log_path: Path,
        max_log_bytes: int | None = None,
        zygote: Zygote | None = None,
    ) -> LocalProcess:
        """Start ``argv`` (never through a shell) with stdout and stderr going, in the order
        written, to ``log_path``, capped at ``max_log_bytes`` (head and tail kept). With a
        ``zygote``, fork it from there (``compute/warm.py``), or spawn it if the zygote cannot."""
        log = CappedLog(log_path, max_log_bytes)
        tree = delegated_tree()
        cgroup = tree.new_step() if tree is not None else None
        try:
            with reaper.spawning():
                if zygote is not None:
                    procs = str(cgroup.path / "cgroup.procs") if cgroup is not None else None
                    try:
                        pid = await zygote.fork(
                            argv, cwd=cwd, env=env, log_fd=log.write_fd, cgroup_procs=procs
                        )
                    except ZygoteUnavailable:
                        pass  # spawned below: a step never waits on a broken zygote
                    else:
                        return cls(ForkedChild(pid), log, env, cgroup)
                proc = await asyncio.create_subprocess_exec(
                    *argv,
                    cwd=cwd,
                    env=dict(env),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log.write_fd,
                    stderr=log.write_fd,
                    start_new_session=True,
                    preexec_fn=cgroup.join if cgroup is not None else None,
                )
                return cls(proc, log, env, cgroup)
        except BaseException:
            if cgroup is not None:
                cgroup.remove()
            raise
        finally:
            log.started()  # closes our write end: the pipe ends with the step's last process

    async def wait(self, timeout: float | None, kill_grace: float) -> Exit:
        """Wait for the process; past ``timeout`` stop it. Once it has ended, whatever it left
        behind (in its group or not) gets SIGTERM and, ``kill_grace`` seconds later, SIGKILL;
        returns when they are gone and the log holds all they wrote."""
        timed_out = False
        try:
            await asyncio.wait_for(asyncio.shield(self._proc.wait()), timeout)
        except TimeoutError:
            timed_out = True
            await self.stop(kill_grace)
        code = await self._proc.wait()
        reaper.leader_reaped(self.pid)
        # After a stop the leftovers have had their SIGTERM and grace: SIGKILL at once.
        await reaper.end_leftovers(self.processes, 0.0 if self._stopping else kill_grace)
        await self._end_cgroup(0.0 if self._stopping else kill_grace)
        await self._finish_log()
        return Exit(exit_code=code, timed_out=timed_out, stopped=self._stopping and not timed_out)

    async def stop(self, kill_grace: float) -> None:
        """SIGTERM to the group and every process of the step, SIGKILL to them all
        ``kill_grace`` seconds later (or as soon as the leader has exited)."""
        self._stopping = True
        if self.cgroup is not None:
            reaper.signal_all(self.cgroup.pids(), signal.SIGTERM)
        await reaper.terminate(self.processes, leader_alive=self._proc.returncode is None)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._proc.wait()), kill_grace)
        # Every process, not only the leader: a child that ignored SIGTERM must go too.
        if self.cgroup is not None:
            self.cgroup.kill()
        await reaper.kill(self.processes, leader_alive=self._proc.returncode is None)

    async def _end_cgroup(self, grace: float) -> None:
        """What is still in the step's cgroup once the step ended: SIGTERM, then SIGKILL
        ``grace`` seconds later (``cgroup.kill``); the empty cgroup is removed."""
        cgroup = self.cgroup
        if cgroup is None:
            return
        if cgroup.populated():
            reaper.signal_all(cgroup.pids(), signal.SIGTERM)
            deadline = asyncio.get_running_loop().time() + grace
            while cgroup.populated() and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(reaper.POLL)
            cgroup.kill()
        deadline = asyncio.get_running_loop().time() + reaper.KILL_DEADLINE
        while not cgroup.remove() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(reaper.POLL)  # killed processes leave the cgroup as they die

    async def _finish_log(self) -> None:
        finished = asyncio.wrap_future(self._log.finished)
        try:
            await asyncio.wait_for(asyncio.shield(finished), self.LOG_DRAIN)
        except TimeoutError:
            # Something we could not kill (another user's process?) holds the step's output.
            self._log.stop()
            await finished


async def start_step(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    log_path: Path,
    max_log_bytes: int | None,
    target: str,
    warm: bool = True,
) -> LocalProcess:
    """Start one step on compute target ``target``: forked from its zygote when the process has
    a warm pool (``warm.activate``) and the step qualifies, spawned otherwise."""
    pool = active_pool()
    zygote = await pool.zygote_for(target, argv, env, warm) if pool is not None else None
    proc = await LocalProcess.start(
        argv, cwd=cwd, env=env, log_path=log_path, max_log_bytes=max_log_bytes, zygote=zygote
    )
    if pool is not None and not proc.forked:
        pool.count_spawned(target)
    return proc
