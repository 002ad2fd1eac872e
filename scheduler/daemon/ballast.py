"""A reserve of disk space the daemon can give back when its filesystem fills.

When the state directory's filesystem is full, the daemon still owes the store the outcomes it
holds in memory (a step that exited 0, a fire time, a claimed file). SQLite needs a little room
to write them, and whatever filled the disk may keep it full. So the daemon keeps a ballast
file in the state directory, allocated for real (``posix_fallocate``: a sparse file would give
nothing back), and deletes it the moment the store says the disk is full: the held writes then
go through while the operator frees space. It is allocated again once there is room for it
twice over, so the ballast never takes the last free bytes itself.

Filesystem I/O: a caller on the event loop hands these calls to a thread.
"""

from __future__ import annotations

import os
from pathlib import Path

import structlog

from scheduler.dispatch.freespace import free_bytes, human_bytes

log = structlog.get_logger("scheduler.daemon.ballast")

BALLAST_NAME = "ballast"
BALLAST_BYTES = 32 * 1024 * 1024


class Ballast:
    """``<state_dir>/ballast``, ``size`` bytes allocated, private to the service user."""

    def __init__(self, state_dir: Path, size: int = BALLAST_BYTES) -> None:
        self.path = state_dir / BALLAST_NAME
        self.size = size

    def held(self) -> bool:
        try:
            return self.path.stat().st_size >= self.size
        except OSError:
            return False

    def ensure(self) -> bool:
        """Allocate the ballast if it is missing and the filesystem has room for it twice over;
        True when it is in place afterwards."""
        if self.size <= 0 or self.held():
            return self.size > 0 and self.held()
        try:
            if free_bytes(self.path.parent) < 2 * self.size:
                return False
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.size)
            finally:
                os.close(fd)
        except OSError as error:
            log.warning("ballast_not_allocated", path=str(self.path), error=str(error))
            self._remove()
            return False
        log.info("ballast_allocated", path=str(self.path), size=human_bytes(self.size))
        return True

    def release(self) -> bool:
        """Delete the ballast; True when there was one to give back."""
        if not self.path.exists():
            return False
        self._remove()
        log.warning("ballast_released", path=str(self.path), size=human_bytes(self.size))
        return True

    def _remove(self) -> None:
        self.path.unlink(missing_ok=True)
