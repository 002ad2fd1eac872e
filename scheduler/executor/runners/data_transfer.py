"""The data_transfer step's process: copy (or sync) files, each one atomically.

- ``patterns`` are fnmatch patterns on the path relative to the source, ``/``-separated; ``*``
  crosses folders, so ``*.csv`` is every CSV at any depth and ``2024/*`` what lies under 2024/.
- Each file is written to a hidden temporary name in its destination folder, given the source's
  mode and mtime, then renamed over the target: a reader sees the old file or the new one,
  never half of one. (No fsync: a power loss may lose a copy, never tear one.)
- ``sync`` skips a file whose target has the same size and mtime (to the nanosecond, as the
  copy preserves it). Neither mode deletes anything in the destination.
- Files reached through symlinks must stay inside the source's datastore, as path parameters confine
  every path; a datastore's own ``.pipesched/`` folder is never copied.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scheduler.executor.runners import StepFailed, run_main, say
from scheduler.runtime import Run

TEMP_SUFFIX = ".pipesched-tmp"
PROGRESS_EVERY = 1000


def transfer(spec: dict[str, Any]) -> dict[str, int]:
    """Copy what ``spec`` asks for; returns the counts that become the step's metrics."""
    source, destination = Path(spec["source"]), Path(spec["destination"])
    mode, patterns = spec["mode"], spec["patterns"] or ["*"]
    if not source.exists():
        raise StepFailed(f"source {spec['source_label']} does not exist ({source})")
    if source.is_dir():
        plan = [
            (path, destination / rel)
            for path, rel in _walk(source, Path(spec["source_root"]), skip=destination)
            if _matches(rel, patterns)
        ]
    else:
        to_folder = spec["destination_is_dir"] or destination.is_dir()
        target = destination / source.name if to_folder else destination
        plan = [(source, target)] if _matches(source.name, patterns) else []
    say(
        f"{mode} {spec['source_label']} -> {spec['destination_label']}: {len(plan)} file"
        f"{'' if len(plan) == 1 else 's'} match {', '.join(patterns)}"
    )
    counts = {"files_copied": 0, "files_skipped": 0, "bytes_copied": 0}
    for done, (path, target) in enumerate(plan, 1):
        stat = path.stat()
        if mode == "sync" and _unchanged(stat, target):
            counts["files_skipped"] += 1
        else:
            copy_atomically(path, target)
            counts["files_copied"] += 1
            counts["bytes_copied"] += stat.st_size
        if done % PROGRESS_EVERY == 0 and done < len(plan):
            say(f"{done}/{len(plan)} files done")
    skipped = f", skipped {counts['files_skipped']} unchanged" if mode == "sync" else ""
    say(
        f"copied {counts['files_copied']} file{'' if counts['files_copied'] == 1 else 's'} "
        f"({_size(counts['bytes_copied'])}){skipped}"
    )
    return counts


def _walk(source: Path, root: Path, skip: Path) -> Iterator[tuple[Path, str]]:
    """``(path, relative posix path)`` of every regular file under ``source``, sorted; symlinked
    folders are followed while they stay inside ``root`` (each real folder once). ``skip`` (the
    destination, when it lies inside the source) and the datastore's ``.pipesched/`` are left
    out, so a copy never copies its own copies."""
    seen: set[str] = {str(skip), str(root / ".pipesched")}
    for dirpath, dirnames, filenames in os.walk(source, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        _check_inside(real, root, dirpath, source)
        dirnames[:] = sorted(
            d for d in dirnames if os.path.realpath(os.path.join(real, d)) not in seen
        )
        for name in sorted(filenames):
            if name.endswith(TEMP_SUFFIX):
                continue  # another transfer's file in flight
            path = Path(dirpath, name)
            if path.is_symlink():
                _check_inside(os.path.realpath(path), root, str(path), source)
            if not path.is_file():
                say(f"warning: skipped {path.relative_to(source)} (not a regular file)")
                continue
            yield path, path.relative_to(source).as_posix()


def _check_inside(real: str, root: Path, shown: str, source: Path) -> None:
    if not Path(real).is_relative_to(root):
        rel = os.path.relpath(shown, source)
        raise StepFailed(
            f"refused: {rel} in the source leads outside its datastore ({root}) through a symlink"
        )


def _matches(rel: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(rel, pattern) for pattern in patterns)


def _unchanged(stat: os.stat_result, target: Path) -> bool:
    try:
        existing = target.stat()
    except FileNotFoundError:
        return False
    return existing.st_size == stat.st_size and existing.st_mtime_ns == stat.st_mtime_ns


def copy_atomically(path: Path, target: Path) -> None:
    """Copy ``path`` to ``target`` through a temporary file in the target's folder."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent)
        os.close(fd)
        try:
            shutil.copy2(path, tmp)  # content, mode bits and mtime
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise StepFailed(f"could not copy {path} to {target}: {exc.strerror or exc}") from None


def _size(n: float) -> str:
    units = ["B", "kB", "MB", "GB", "TB"]
    while n >= 1000 and len(units) > 1:
        n /= 1000
        units.pop(0)
    return f"{n:.0f} B" if units[0] == "B" else f"{n:.1f} {units[0]}"


def _body(spec: dict[str, Any]) -> None:
    counts = transfer(spec)
    run = Run.get_context()
    for name, value in counts.items():
        run.log(name, value)


def main() -> None:
    run_main(_body)


if __name__ == "__main__":
    main()
