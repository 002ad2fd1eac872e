"""``min_free_space``: no new run starts while the state directory's filesystem has less free
space (``f_bavail * f_frsize``: what an unprivileged writer may still use) than the config asks,
so the daemon keeps room to record what it owes. The check is one ``statvfs`` call: filesystem
I/O, so a caller on the event loop hands it to a thread.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from scheduler.core.errors import PipeschedError

if TYPE_CHECKING:
    from scheduler.definitions.config import Config

_UNITS = (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024))


class LowFreeSpace(PipeschedError):
    """Too little free space on the state directory's filesystem to start a run."""


def human_bytes(count: int) -> str:
    """``0.4 GiB``, ``1 GiB``, ``512 B``: one decimal at most, GiB below 1 GiB down to 0.1 GiB."""
    for unit, size in _UNITS:
        if count >= size or (unit == "GiB" and count >= size // 10):
            text = f"{count / size:.1f}".removesuffix(".0")
            return f"{text} {unit}"
    return f"{count} B"


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on ``path``'s filesystem (the nearest existing
    parent's when ``path`` does not exist yet)."""
    while not path.exists() and path.parent != path:
        path = path.parent
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


def free_space_problem(config: Config) -> str | None:
    """Why no run may start now (``not started: 0.4 GiB free on DIR, min_free_space is 1 GiB``),
    or None when there is room or the check is off (``min_free_space: 0``)."""
    return free_space_problem_at(config.state_dir, config.min_free_space)


def free_space_problem_at(state_dir: Path, min_free_space: int) -> str | None:
    """``free_space_problem`` for a state directory and a threshold given as they are."""
    if min_free_space <= 0:
        return None
    try:
        free = free_bytes(state_dir)
    except OSError:
        return None  # no answer is no reason to refuse; writing will tell
    if free >= min_free_space:
        return None
    return (
        f"not started: {human_bytes(free)} free on {state_dir}, "
        f"min_free_space is {human_bytes(min_free_space)}"
    )


def check_free_space(config: Config) -> None:
    """Raise ``LowFreeSpace`` when ``free_space_problem`` finds one."""
    problem = free_space_problem(config)
    if problem is not None:
        raise LowFreeSpace(
            problem,
            hint=f"free space on {config.state_dir}, or lower min_free_space in {config.file}",
        )
