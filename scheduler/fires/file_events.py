"""The thread edge of file-drop triggers: watchdog observers, their events, and the probes that
pick inotify or polling.

watchdog runs its own threads; everything here either runs on them and only touches the
thread-safe ``Inbox``, or runs once at watcher start. The event loop drains the inbox (one
wake-up per batch of events, not one callback per event), so a 10,000-file burst costs one
dict entry per distinct path, whatever the number of kernel events.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

logger = logging.getLogger(__name__)

# Filesystems where inotify sees only this machine's writes (or nothing): poll them instead.
NETWORK_FS_TYPES = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "fuse.sshfs",
        "9p",
        "afs",
        "ceph",
        "fuse.glusterfs",
        "glusterfs",
        "lustre",
        "fuse.s3fs",
        "fuse.rclone",
        "davfs",
    }
)
WATCH_LIMIT_ERRNOS = frozenset({errno.ENOSPC, errno.EMFILE})
WATCH_LIMIT_HINT = (
    "inotify ran out of watches or instances: raise fs.inotify.max_user_watches "
    "(and fs.inotify.max_user_instances), e.g. sysctl fs.inotify.max_user_watches=524288"
)

# Event kinds handed to the loop, by how soon a file may count.
MOVED = "moved"  # renamed into place: counts at once (the fast path)
CLOSED = "closed"  # closed after writing: counts once quiet for ``settle``
CHANGED = "changed"  # modified with no close seen (polling, touch): quiet for ``settle``
OPEN = "open"  # being written (inotify): waits for its close
CREATED = "created"  # created (inotify): like OPEN, unless already found whole by a walk
DELETED = "deleted"
NEW_DIR = "new_dir"  # a folder created or moved in: walk it (files may beat its new watch)

FsTypeProbe = Callable[[Path], "str | None"]
ObserverFactory = Callable[..., BaseObserver]


def mount_fs_type(path: Path, mountinfo: str = "/proc/self/mountinfo") -> str | None:
    """The filesystem type of the mount holding ``path`` (longest mount point that contains it)."""
    real = os.path.realpath(path)
    best, best_type = "", None
    try:
        with open(mountinfo, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                left, _, right = line.partition(" - ")
                fields = left.split()
                if len(fields) < 5 or not right:
                    continue
                point = fields[4].replace("\\040", " ")
                inside = real == point or real.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best):
                    best, best_type = point, right.split()[0]
    except OSError:
        return None
    return best_type


class Inbox:
    """Latest event kind per absolute path, filled by observer threads, drained by the loop."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, str] = {}
        self._overflows = 0
        self._wake = wake
        self._armed = True

    def put(self, path: str, kind: str) -> None:
        with self._lock:
            self._items[path] = kind  # the latest wins: the loop re-checks with stat anyway
            wake, self._armed = self._armed, False
        if wake:
            self._wake()

    def overflow(self) -> None:
        with self._lock:
            self._overflows += 1
            wake, self._armed = self._armed, False
        if wake:
            self._wake()

    def drain(self) -> tuple[dict[str, str], int]:
        with self._lock:
            items, self._items = self._items, {}
            overflows, self._overflows = self._overflows, 0
            self._armed = True
        return items, overflows


class QueueOverflowed(FileSystemEvent):
    """Our marker for IN_Q_OVERFLOW, queued behind the events read before it. watchdog reports
    an overflow on its reader thread while the events parsed before it may still wait in the
    observer's queue; were the loop told at once, its full rescan could run before them, and a
    late "open" among them would then hold a file whose close was lost until the next timed
    rescan. Delivered in order, the rescan follows every event the kernel kept."""

    event_type = "queue_overflowed"

    def notify(self) -> None:
        callback = getattr(self, "callback", None)
        if callback is not None:
            callback()


class Handler(FileSystemEventHandler):
    """Turns watchdog events into (path, kind) inbox entries; runs on the observer thread."""

    def __init__(self, inbox: Inbox, *, polling: bool) -> None:
        self.inbox, self.polling = inbox, polling

    def dispatch(self, event: FileSystemEvent) -> None:
        if isinstance(event, QueueOverflowed):
            event.notify()
            return
        super().dispatch(event)

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            if isinstance(event, DirCreatedEvent):
                self.inbox.put(os.fsdecode(event.src_path), NEW_DIR)
            elif isinstance(event, DirMovedEvent) and event.dest_path:
                self.inbox.put(os.fsdecode(event.dest_path), NEW_DIR)
            return
        if isinstance(event, FileMovedEvent):
            if event.src_path:
                self.inbox.put(os.fsdecode(event.src_path), DELETED)
            if event.dest_path:
                self.inbox.put(os.fsdecode(event.dest_path), MOVED)
            return
        path = os.fsdecode(event.src_path)
        if isinstance(event, FileClosedEvent):
            self.inbox.put(path, CLOSED)
        elif isinstance(event, FileDeletedEvent):
            self.inbox.put(path, DELETED)
        elif isinstance(event, FileCreatedEvent | FileModifiedEvent):
            if self.polling or _linked(path):  # a link is made whole: no close follows
                self.inbox.put(path, CHANGED)
            else:
                self.inbox.put(path, CREATED if isinstance(event, FileCreatedEvent) else OPEN)
        elif isinstance(event, FileAttribEvent):
            self.inbox.put(path, CHANGED)


def _linked(path: str) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISLNK(st.st_mode) or st.st_nlink > 1


def _overflow_observer(on_overflow: Callable[[], None]) -> BaseObserver:
    """watchdog's inotify observer with full move events (a rename from outside is a move, not
    a create) and a hook on IN_Q_OVERFLOW, which watchdog itself only logs."""
    from watchdog.observers.inotify import InotifyFullEmitter, InotifyObserver

    class _Emitter(InotifyFullEmitter):
        def on_thread_start(self) -> None:
            super().on_thread_start()
            group: Any = getattr(self, "_inotify", None)
            original = getattr(group, "on_queue_overflow", None)
            if original is None:  # watchdog's internals moved: rescans on the timer still run
                logger.warning("inotify overflow hook unavailable in this watchdog version")
                return

            def overflowed() -> None:
                original()
                marker = QueueOverflowed(self.watch.path)
                marker.callback = on_overflow  # type: ignore[attr-defined]
                self.queue_event(marker)  # in order with the events read before it

            group.on_queue_overflow = overflowed

    class _Observer(InotifyObserver):
        def __init__(self) -> None:
            super().__init__(generate_full_events=True)
            self._emitter_class = _Emitter

    return _Observer()


def make_observer(
    kind: str, polling_interval: float | None, on_overflow: Callable[[], None]
) -> BaseObserver:
    """``kind`` is "inotify" or "polling"."""
    if kind == "polling":
        return PollingObserver(timeout=polling_interval or 1.0)
    return _overflow_observer(on_overflow)
