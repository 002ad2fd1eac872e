"""Who owns a run, and whether that owner still lives; and the process table as /proc shows it.

A PID alone is not an identity (PIDs are reused), so an owner is (host, pid, start time in clock
ticks since boot, field 22 of /proc/PID/stat). A process counts as alive when that file exists, its
start time matches and its state is not Z (an orphan may stay a zombie for seconds).

``process_table`` reads every /proc/PID/stat once: parent, process group, session and state of
each process, enough to walk a process tree. A zombie keeps these fields (only its environment
and command line are gone), so it still shows whose child it is.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Owner:
    """The process that owns a run; alive only while /proc/PID/stat shows the same start time."""

    host: str
    pid: int
    start_ticks: int


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read().decode(errors="replace")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    _, _, rest = raw.rpartition(")")
    return rest.split()


def process_start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks after boot, or None when it is gone."""
    fields = _stat_fields(pid)
    # rest starts at field 3 (state); field 22 (starttime) is rest[19].
    return int(fields[19]) if fields and len(fields) > 19 else None


def current_owner() -> Owner:
    """This process as a run owner."""
    pid = os.getpid()
    return Owner(host=socket.gethostname(), pid=pid, start_ticks=process_start_ticks(pid) or 0)


def is_alive(pid: int, start_ticks: int | None) -> bool:
    """True while PID is the same process that started at ``start_ticks`` and is not a zombie."""
    fields = _stat_fields(pid)
    if not fields:
        return False
    if fields[0] == "Z":
        return False
    return start_ticks is None or int(fields[19]) == start_ticks


@dataclass(frozen=True)
class ProcStat:
    """One process as /proc/PID/stat shows it."""

    pid: int
    ppid: int
    pgrp: int
    session: int
    state: str  # R, S, D, Z, ... (Z: a zombie, dead and waiting to be reaped by its parent)

    @property
    def zombie(self) -> bool:
        return self.state in ("Z", "X")


def process_stat(pid: int) -> ProcStat | None:
    """The process's stat line, or None when it is gone."""
    fields = _stat_fields(pid)
    if not fields or len(fields) < 4:
        return None
    try:
        return ProcStat(pid, int(fields[1]), int(fields[2]), int(fields[3]), fields[0])
    except ValueError:
        return None


def _pids() -> Iterator[int]:
    try:
        entries = os.scandir("/proc")
    except OSError:
        return
    with entries:
        for entry in entries:
            if entry.name.isdigit():
                yield int(entry.name)


def process_table() -> dict[int, ProcStat]:
    """Every process this host shows, by pid (one that ends while we read is left out)."""
    table = {}
    for pid in _pids():
        stat = process_stat(pid)
        if stat is not None:
            table[pid] = stat
    return table


def process_environ(pid: int) -> bytes:
    """The environment the process was started with (NUL-separated ``NAME=value``); empty for
    a zombie, a kernel thread, or a process we may not read."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def holds_file(pid: int, target: str) -> bool:
    """Whether one of the process's open descriptors is ``target`` as /proc/PID/fd shows it
    (``pipe:[INODE]`` for a pipe)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                return True
        except OSError:
            continue
    return False


def children_of(pid: int) -> list[int]:
    """The process's children, from /proc/PID/task/*/children (each thread lists those it
    forked); falls back to a scan of the whole table when the kernel lacks that file."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as handle:
                found.extend(int(p) for p in handle.read().split())
        except FileNotFoundError:
            return [p.pid for p in process_table().values() if p.ppid == pid]
        except OSError:
            continue
    return found


def processes_of_run(run_id: str) -> list[int]:
    """PIDs of live processes whose environment names this run (steps and their children)."""
    needle = f"PIPESCHED_RUN_ID={run_id}\0".encode()
    found = []
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as handle:
                if needle in handle.read():
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def exit_description(code: int) -> str:
    """A process's exit status in words: ``exit code 3``, ``killed by SIGKILL``."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
