"""No process of a step outlives it: what a step leaves behind is found, killed and reaped.

A step runs as the leader of a new session and process group (``compute/local.py``), and most of
its descendants stay in that group, where ``killpg`` reaches them. A descendant that calls
``setsid()`` (as every daemonizing library does) leaves the group and the session, and one whose
parent exits is re-parented: to init, or to its nearest ancestor that is a *child subreaper*. The
daemon and a foreground ``pipesched run`` make themselves child subreapers
(``become_subreaper``), so whatever a step leaves behind stays below them: it can be found, and
once killed it is reaped here instead of lingering as a zombie.

**Finding a step's processes.** When a step ends or is stopped, one snapshot of /proc (parent,
process group, session and state of each process) is taken, and a process belongs to the step
when

- it is in the step's process group or session (the leader's pid: a new session has its
  leader's pid as both ids), or
- its environment (``/proc/PID/environ``: the one it was started with, passed on through every
  ``fork`` and ``exec`` unless a program replaces it whole) holds this attempt's
  ``PIPESCHED_RUN_ID``, ``PIPESCHED_STEP`` and ``PIPESCHED_ATTEMPT``, or
- it still holds the write end of the step's output pipe (``/proc/PID/fd``; the pipe is made for
  this attempt only and never inherited by anything else of ours), or
- its parent belongs to the step (the leader too, while it lives).

In a subreaper only the processes below it are looked at (all a step leaves stays there), so a
snapshot reads the environment and descriptors of pipesched's own processes only, however busy
the host; elsewhere (a process that could not become a subreaper) every process is a candidate.

Why not track the descendants' pids while the step runs: a poll misses a process that forks,
calls ``setsid()`` and loses its parent between two polls, which takes microseconds; the
environment and the pipe survive all of that. What none of these catches is a process that left
the session, replaced its whole environment, closed the step's output and lost its parent
before the step ended: nothing ties it to its step any more. It is still below us (we are its
subreaper), so it is killed when the daemon or ``pipesched run`` exits (``sweep``, at exit).

**Killing.** SIGTERM first (to the group and to every process found), then, ``grace`` seconds
later, SIGKILL to whatever is still alive; a new snapshot is taken after each round, since a
process may fork while it is being killed, until one finds none alive.

**Reaping.** asyncio waits for each step's leader by its pid, and other parts of pipesched wait
for the children they start; waiting for a pid that someone else waits for would steal its exit
status. So the subreaper never calls ``waitpid(-1)``: it waits, by pid, only for zombies among its
children that run in another session than its own and are no step's leader (``leader()``
registers them while they live). Only re-parented step processes are such children: everything
else pipesched starts stays in its own session. While a step is being spawned (its pid not yet
registered) no zombie is reaped; the next reaping takes it.

**Why ctypes.** ``prctl`` is not in the standard library; the PyPI packages that wrap it
(``prctl``, ``python-prctl``) are C extensions built against libcap with no release in years,
too much for one call with constant arguments. ``become_subreaper`` is a no-op off Linux.

Under systemd with ``Delegate=yes`` each step also runs in a cgroup of its own
(``compute/cgroups.py``), where the kernel keeps the attribution exact; this module works
without one, under systemd and outside it, and alongside one.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from scheduler.core.lazylog import lazy_logger
from scheduler.core.procinfo import ProcStat, holds_file, process_environ, process_table

log = lazy_logger("scheduler.compute.reaper")

PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>
MARK_KEYS = ("PIPESCHED_RUN_ID", "PIPESCHED_STEP", "PIPESCHED_ATTEMPT")
POLL = 0.05
KILL_DEADLINE = 10.0  # SIGKILLed processes that are still alive after this are reported, not waited

_leaders: set[int] = set()  # live step leaders: asyncio waits for them by pid
_spawning = 0  # steps being spawned: their pids are not known yet
_subreaper = False


def become_subreaper() -> bool:
    """Make this process a child subreaper; at its exit, kill what is left below it. True when
    the kernel agreed (Linux 3.4 and later)."""
    global _subreaper
    if _subreaper:
        return True
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        log.warning("subreaper_refused", error=os.strerror(ctypes.get_errno()))
        return False
    _subreaper = True
    atexit.register(sweep)
    return True


def is_subreaper() -> bool:
    return _subreaper


@contextlib.contextmanager
def spawning() -> Iterator[None]:
    """Around the spawn of a step: no zombie is reaped until its leader is registered."""
    global _spawning
    _spawning += 1
    try:
        yield
    finally:
        _spawning -= 1


def add_leader(pid: int) -> None:
    """A step's leader, which asyncio waits for: never reap it here."""
    _leaders.add(pid)


def leader_reaped(pid: int) -> None:
    """asyncio has waited for the leader: its pid is free again."""
    _leaders.discard(pid)


@dataclass(frozen=True)
class StepProcesses:
    """How to recognise the processes of one step attempt (see the module docstring)."""

    leader: int  # the leader's pid: also the id of its process group and session
    marks: tuple[bytes, ...] = ()  # b"NAME=value" entries its environment holds
    pipe: str | None = None  # its output pipe as /proc/PID/fd shows it: "pipe:[INODE]"
    me: int = field(default_factory=os.getpid)

    @classmethod
    def of(cls, leader: int, env: dict[str, str], pipe: str | None = None) -> StepProcesses:
        marks = tuple(f"{key}={env[key]}".encode() for key in MARK_KEYS if key in env)
        return cls(leader=leader, marks=marks, pipe=pipe)

    def find(self, *, leader_alive: bool) -> set[int]:
        """Pids of the step's live processes (not zombies), from one snapshot of /proc."""
        table = process_table()
        candidates: Iterable[ProcStat] = table.values()
        if _subreaper:  # every process a step leaves stays below us: look nowhere else
            below = _with_descendants({p.pid for p in table.values() if p.ppid == self.me}, table)
            candidates = (table[pid] for pid in below)
        seeds = {
            p.pid
            for p in candidates
            if p.pid != self.me
            and (p.pgrp == self.leader or p.session == self.leader or self._marked(p))
        }
        if leader_alive and self.leader in table:
            seeds.add(self.leader)
        found = _with_descendants(seeds, table)
        found.discard(self.me)
        if not leader_alive:
            found.discard(self.leader)  # reaped: its pid may be another process's by now
        return {pid for pid in found if not table[pid].zombie}

    def _marked(self, stat: ProcStat) -> bool:
        if stat.zombie or stat.ppid == 2 or stat.pid == 2:  # zombies and kernel threads: no env
            return False
        if self.marks:
            entries = set(process_environ(stat.pid).split(b"\0"))
            if all(mark in entries for mark in self.marks):
                return True
        return self.pipe is not None and holds_file(stat.pid, self.pipe)


def _with_descendants(seeds: set[int], table: dict[int, ProcStat]) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in table.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    found, todo = set(), list(seeds)
    while todo:
        pid = todo.pop()
        if pid in found or pid not in table:
            continue
        found.add(pid)
        todo.extend(children.get(pid, ()))
    return found


def signal_all(pids: set[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def terminate(step: StepProcesses, *, leader_alive: bool) -> None:
    """SIGTERM to the step's group and to every process of the step."""
    signal_group(step.leader, signal.SIGTERM)
    signal_all(await asyncio.to_thread(step.find, leader_alive=leader_alive), signal.SIGTERM)


async def kill(step: StepProcesses, *, leader_alive: bool) -> None:
    """SIGKILL to the step's group and to every process of the step."""
    signal_group(step.leader, signal.SIGKILL)
    signal_all(await asyncio.to_thread(step.find, leader_alive=leader_alive), signal.SIGKILL)


async def end_leftovers(step: StepProcesses, grace: float) -> int:
    """The step's leader is gone (and reaped): stop whatever it left behind, SIGTERM and, after
    ``grace`` seconds, SIGKILL; reap the zombies it leaves us. Returns how many were found."""
    found = await asyncio.to_thread(step.find, leader_alive=False)
    if found:
        log.info("step_leftovers", leader=step.leader, count=len(found), pids=sorted(found))
        signal_group(step.leader, signal.SIGTERM)
        signal_all(found, signal.SIGTERM)
        deadline = time.monotonic() + grace
        alive = found
        while alive and time.monotonic() < deadline:
            await asyncio.sleep(POLL)
            reap()
            alive = await asyncio.to_thread(step.find, leader_alive=False)
        deadline = time.monotonic() + KILL_DEADLINE
        while alive:
            signal_group(step.leader, signal.SIGKILL)
            signal_all(alive, signal.SIGKILL)
            if time.monotonic() >= deadline:
                log.error("step_leftovers_unkillable", leader=step.leader, pids=sorted(alive))
                break
            await asyncio.sleep(POLL)
            reap()
            alive = await asyncio.to_thread(step.find, leader_alive=False)
    reap()
    return len(found)


def reap() -> int:
    """Wait for the zombies among our children that are re-parented step processes (see the
    module docstring); returns how many. Call it on the event loop's thread, where steps are
    spawned: a spawn cannot then slip in between the ``spawning`` check and the waits. It
    reads /proc stat lines only (a few milliseconds).
    """
    if _spawning:
        return 0
    me = os.getpid()
    try:
        my_session = os.getsid(0)
    except OSError:
        return 0
    reaped = 0
    for stat in process_table().values():
        if (
            stat.ppid == me
            and stat.zombie
            and stat.session != my_session
            and stat.pid not in _leaders
        ):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(stat.pid, os.WNOHANG)
                reaped += 1
    return reaped


def sweep() -> int:
    """At exit: kill every process still below us that runs in another session (leftovers of
    steps nothing else tied to their step), and reap them. Returns how many were killed."""
    me = os.getpid()
    try:
        my_session = os.getsid(0)
    except OSError:
        return 0
    killed: set[int] = set()
    deadline = time.monotonic() + KILL_DEADLINE
    while time.monotonic() < deadline:
        table = process_table()
        ours = {p.pid for p in table.values() if p.ppid == me and p.session != my_session}
        alive = {pid for pid in _with_descendants(ours, table) if not table[pid].zombie}
        alive.discard(me)
        signal_all(alive, signal.SIGKILL)
        killed |= alive
        for pid in ours:
            if table[pid].zombie:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
        if not alive and not any(table[pid].zombie for pid in ours):
            break
        time.sleep(POLL)
    if killed:
        log.warning("leftovers_killed_at_exit", pids=sorted(killed))
    return len(killed)
