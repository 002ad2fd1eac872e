"""Folders and files of pipesched's state made private (0700, 0600) whatever the umask.

Standard library only: the lean foreground path creates a run's folders without SQLAlchemy.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def create_private_dir(path: Path) -> None:
    """``path`` and its missing parents; the last one created 0700 whatever the umask (an
    existing folder keeps its mode: its owner chose it)."""
    if path.is_dir():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=PRIVATE_DIR)
    except FileExistsError:
        return
    os.chmod(path, PRIVATE_DIR)  # mkdir's mode is masked by the umask


def create_private_file(path: Path) -> None:
    """The SQLite database file, created empty and 0600 before SQLite opens it: SQLite creates
    a new file 0644 minus the umask, and gives its -wal and -shm the database file's mode."""
    create_private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)
