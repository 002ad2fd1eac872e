"""Retiring a zygote whose modules changed on disk (a ``pip install -U``): the folders its
modules came from are watched."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scheduler.compute.zygote_process import Zygote

MODULE_SUFFIXES = (".py", ".so", ".pyd", ".pth")


class ModuleWatch:
    """Watches the folders a zygote's modules came from (each folder alone, not its subfolders):
    a module file created, changed, moved or deleted there retires the zygote."""

    def __init__(self, zygotes: Mapping[str, Zygote]) -> None:
        self._zygotes = zygotes
        self._observer: Any = None
        self._followed: dict[str, int] = {}  # target -> pid whose folders are watched
        self._targets_by_folder: dict[str, set[str]] = {}

    def follow(self, zyg: Zygote) -> None:
        if self._followed.get(zyg.target) == zyg.pid:
            return
        from watchdog.events import FileSystemEventHandler  # lazy: only warm daemons watch
        from watchdog.observers import Observer  # lazy: only warm daemons watch

        watch = self

        class Changed(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                if event.event_type in ("opened", "closed", "closed_no_write"):
                    return
                paths = [event.src_path, getattr(event, "dest_path", "")]
                if any(os.fsdecode(p).endswith(MODULE_SUFFIXES) for p in paths if p):
                    watch.changed(os.path.dirname(os.fsdecode(event.src_path)))

        if self._observer is None:
            self._observer = Observer()
            self._observer.daemon = True
            self._observer.start()
        handler = Changed()
        for folder in zyg.folders:
            targets = self._targets_by_folder.setdefault(folder, set())
            if not targets:
                with contextlib.suppress(OSError):
                    self._observer.schedule(handler, folder, recursive=False)
            targets.add(zyg.target)
        self._followed[zyg.target] = zyg.pid or 0

    def changed(self, folder: str) -> None:
        """Called on the observer's thread: only marks; the zygote is retired by ``check``."""
        for target in self._targets_by_folder.get(folder, ()):
            zyg = self._zygotes.get(target)
            if zyg is not None:
                zyg.stale_requested = True

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(5)
            self._observer = None
