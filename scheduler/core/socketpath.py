"""Unix socket paths of any length.

The kernel takes at most 107 bytes of path in ``sockaddr_un``, and a state directory deep in a
home or a CI workspace passes that easily (``bind`` then fails with "AF_UNIX path too long").
A longer path is reached through the folder's descriptor instead: ``/proc/self/fd/N/NAME``
names the same socket file, in a few bytes, for both ``bind`` and ``connect`` (Linux).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SUN_PATH_MAX = 107


@contextmanager
def socket_address(path: Path) -> Iterator[str]:
    """An address for ``path`` short enough for ``bind``/``connect``, valid inside the block."""
    if len(os.fsencode(path)) <= SUN_PATH_MAX:
        yield str(path)
        return
    folder = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{folder}/{path.name}"
    finally:
        os.close(folder)
