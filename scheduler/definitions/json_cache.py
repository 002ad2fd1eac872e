"""What the compiled plans and the definition listings share: files of plain JSON in the user's
cache folder (``$XDG_CACHE_HOME/pipesched/<kind>``, else ``~/.cache/pipesched/<kind>``), written
atomically and privately (folder 0700, files 0600), and the content facts they are keyed by.
Standard library only: both are read on paths that must not load pydantic."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: A cache file not rewritten for this long is deleted when another is saved (its project may
#: be gone).
STALE_SECONDS = 30 * 24 * 3600


def cache_dir(kind: str) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pipesched" / kind


def keyed_path(folder: Path, key: Any) -> Path:
    """The file in ``folder`` for ``key`` (anything JSON can hold)."""
    digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()
    return folder / f"{digest[:32]}.json"


def file_digest(path: str) -> str | None:
    """SHA-256 of the file's content; None when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return None


def folder_listing(folder: str) -> list[str] | None:
    try:
        return sorted(os.listdir(folder))
    except OSError:
        return None


def save_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` atomically and privately, pruning stale files beside it; a failure only
    costs speed."""
    _prune(path.parent)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
        os.replace(tmp, path)
    except (OSError, TypeError, ValueError):  # TypeError, ValueError: a value JSON cannot hold
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _prune(folder: Path) -> None:
    cutoff = time.time() - STALE_SECONDS
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        with contextlib.suppress(OSError):
            if entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
