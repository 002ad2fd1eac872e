"""What an on_change schedule watches, without the watcher: which paths under a datastore
match the schedule (its patterns and ignore_patterns, never the ``.pipesched`` folder), the
escaped path from the datastore root each file is known by, a walk that lists the matching
files with their (size, mtime_ns), and the pending entry a walk gives a file it finds.

Nothing here touches the loop, the store or a clock of its own: callers pass the times in,
and ``WatchedFolder.walk`` is plain blocking I/O for a worker thread.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

from scheduler.core.pathnames import escape_name, unescape_name
from scheduler.definitions.schedules import OnChange
from scheduler.store.records import FileKey

INTERNAL_DIR = ".pipesched"


@dataclass(frozen=True)
class PendingFile:
    """A file seen but not counted yet (times on the clock's monotonic scale)."""

    due: float | None  # when it may count; None: open for writing, waits for its close
    snap: tuple[int, int] | None  # (size, mtime_ns) when last seen changing; None: not yet
    seen_at: float  # when it was (last) seen


def found_pending(key: FileKey, wall_ns: int, now: float, settle: float) -> PendingFile:
    """The entry for a file a walk found: it counts at once, unless its mtime (on the wall
    clock ``wall_ns`` reads) is younger than ``settle``; then once quiet for ``settle``."""
    young = (wall_ns - key.mtime_ns) / 1e9 < settle
    return PendingFile(now + (settle if young else 0.0), (key.size, key.mtime_ns), now)


class WatchedFolder:
    """The files of one on_change schedule: a datastore ``root`` and the schedule's spec."""

    def __init__(self, root: Path, spec: OnChange) -> None:
        self.root, self.spec = root, spec

    def walk(self, top: Path) -> list[FileKey]:
        found = []
        for dirpath, dirnames, filenames in os.walk(top):
            here = Path(dirpath)
            if here == self.root:
                dirnames[:] = [d for d in dirnames if d != INTERNAL_DIR]
            for name in filenames:
                raw = (here / name).relative_to(self.root).as_posix()
                if not self.matches(raw):
                    continue
                snap = snapshot(here / name)
                if snap is not None:
                    found.append(FileKey(escape_name(raw), snap[0], snap[1]))
        return found

    def relative(self, path: str) -> str | None:
        """The path from the datastore root of a watched file that matches, else None; as
        escaped text (``scheduler.core.pathnames``), the form the ledger and runs carry."""
        try:
            rel = Path(path).relative_to(self.root).as_posix()
        except ValueError:
            return None
        return escape_name(rel) if self.matches(rel) else None

    def file(self, rel: str) -> Path:
        """The file of an escaped path from the datastore root."""
        return self.root / unescape_name(rel)

    def matches(self, rel: str) -> bool:
        parts = PurePosixPath(rel).parts
        if not parts or parts[0] == INTERNAL_DIR:
            return False
        try:
            local = PurePosixPath(rel).relative_to(self.spec.path or ".").as_posix()
        except ValueError:
            return False
        spec: OnChange = self.spec
        if any(fnmatchcase(part, pat) for part in local.split("/") for pat in spec.ignore_patterns):
            return False
        if any(fnmatchcase(local, pat) for pat in spec.ignore_patterns):
            return False
        name = parts[-1]
        return any(fnmatchcase(name, p) or fnmatchcase(local, p) for p in spec.patterns)


def snapshot(path: Path) -> tuple[int, int] | None:
    """A file's (size, mtime_ns), or None when it cannot be stat'ed (gone)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)
