"""Who owns a run, and whether that owner still lives.

A PID alone is not an identity (PIDs are reused), so an owner is (host, pid, start time in clock
ticks since boot, field 22 of /proc/PID/stat). A process counts as alive when that file exists, its
start time matches and its state is not Z (an orphan may stay a zombie for seconds).
"""

from __future__ import annotations

import os
import socket
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
