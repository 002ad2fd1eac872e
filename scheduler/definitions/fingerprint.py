"""What makes two step runs the same (step reuse).

A fingerprint hashes: the step's definition with parameters and the run's times
(``${{run.nominal_date}}``...) resolved but ``${{data.*}}``, ``${{run.id}}`` and
``${{run.experiment}}`` left symbolic; the values of the parameters the step references (only those); the
content of its source directory; its interpreter; the fingerprints of the upstream steps it reads;
and a manifest (path, size, mtime) of every file under each ``path`` parameter it reads — so new
data in an input folder is never hidden by a stale reuse.

Listing, hashing and manifests read whole trees: they assert that they run off the event loop
(``scheduler.core.loopguard``, on under its test variable); callers on a loop hand them to a thread.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scheduler.core.loopguard import assert_off_loop
from scheduler.definitions.templating import partially_substitute

if TYPE_CHECKING:
    import pathspec

IGNORE_FILES = (".gitignore", ".amlignore")
_GLOB = frozenset("*?[")


def _ignore_spec(root: Path) -> pathspec.PathSpec | None:
    """The patterns of ``.amlignore`` at the top of ``root``, else of ``.gitignore``: as in
    Azure ML, when both exist ``.gitignore`` is not read."""
    for name in reversed(IGNORE_FILES):  # .amlignore first
        try:
            lines = (root / name).read_text().splitlines()
        except OSError:
            continue
        import pathspec  # lazy: most source folders have no ignore file

        return pathspec.PathSpec.from_lines("gitignore", lines)
    return None


def source_files(
    root: Path, leave_out: Callable[[str], bool] | None = None
) -> Iterator[tuple[str, str]]:
    """(relative posix path, absolute path) of every regular file of a source directory that
    counts, sorted: ``__pycache__``, dotfiles, what ``.amlignore`` (else ``.gitignore``) at its
    top excludes, sockets, pipes and devices are left out, and so is every folder for which
    ``leave_out(absolute path)`` is true. Reuse hashes exactly these; a published snapshot
    copies exactly these."""
    assert_off_loop("listing a source directory")
    spec = _ignore_spec(root)
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not d.startswith(".")
            and d != "__pycache__"
            and not (spec and spec.match_file(_rel(rel_dir, d) + "/"))
            and not (leave_out and leave_out(os.path.join(dirpath, d)))
        )
        for name in sorted(filenames):
            rel = _rel(rel_dir, name)
            if name.startswith(".") or (spec and spec.match_file(rel)):
                continue
            full = os.path.join(dirpath, name)
            if os.path.isfile(full):  # links followed; a socket or a dangling link is no source
                yield rel, full


def source_tree_hash(root: Path) -> str:
    """Hash of a source directory's files (names and bytes), as ``source_files`` lists them."""
    assert_off_loop("hashing a source directory")
    digest = hashlib.sha256()
    for rel, full in source_files(root):
        digest.update(rel.encode() + b"\0")
        try:
            with open(full, "rb") as handle:
                digest.update(hashlib.file_digest(handle, "sha256").digest())
        except OSError:
            digest.update(b"<unreadable>")
    return digest.hexdigest()


def _rel(rel_dir: str, name: str) -> str:
    return name if rel_dir == "." else f"{rel_dir}/{name}"


def path_manifest(path: Path) -> list[tuple[str, int, int]] | str:
    """(relative path, size, mtime_ns) of every file under ``path`` (or of the file itself, or
    of each file a glob such as ``folder/*.csv`` matches); ``"missing"`` when nothing is there."""
    assert_off_loop("listing an input path")
    try:
        stat = path.stat()
    except OSError:
        if _GLOB & set(str(path)):
            return _glob_manifest(path)
        return "missing"
    if not path.is_dir():
        return [(".", stat.st_size, stat.st_mtime_ns)]
    entries: list[tuple[str, int, int]] = []
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            try:
                file_stat = os.stat(full)
            except OSError:
                continue
            entries.append((os.path.relpath(full, path), file_stat.st_size, file_stat.st_mtime_ns))
    return entries


def _glob_manifest(pattern: Path) -> list[tuple[str, int, int]] | str:
    entries: list[tuple[str, int, int]] = []
    for match in sorted(glob.glob(str(pattern), recursive=True)):
        try:
            stat = os.stat(match)
        except OSError:
            continue
        if not os.path.isdir(match):
            entries.append((match, stat.st_size, stat.st_mtime_ns))
    return entries or "missing"


def _resolve_params(value: Any, values: Mapping[str, Mapping[str, str]]) -> Any:
    if isinstance(value, str):
        return partially_substitute(value, values)
    if isinstance(value, list):
        return [_resolve_params(v, values) for v in value]
    if isinstance(value, dict):
        return {k: _resolve_params(v, values) for k, v in value.items()}
    return value


def step_fingerprint(
    *,
    definition: Mapping[str, Any],
    argv_parameters: Mapping[str, str],
    referenced_parameters: Mapping[str, Any],
    source_hash: str,
    interpreter: str,
    upstream: Mapping[str, str],
    manifests: Mapping[str, Any],
    run_times: Mapping[str, str] | None = None,
) -> str:
    """The reuse key of one step run; see the module docstring for what goes in.
    ``run_times``: the run's ``${{run.nominal_time}}``-like values; a step that names one of
    them does different work for each time, so it is substituted (``run.id`` stays symbolic)."""
    # Forked or spawned, a step does the same work: ``warm`` does not change what it produces.
    material = {
        "definition": _resolve_params(
            {k: v for k, v in definition.items() if k != "warm"},
            {"parameters": argv_parameters, "run": run_times or {}},
        ),
        "parameters": dict(sorted(referenced_parameters.items())),
        "source": source_hash,
        "interpreter": interpreter,
        "upstream": dict(sorted(upstream.items())),
        "manifests": dict(sorted(manifests.items())),
    }
    blob = json.dumps(material, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def pipeline_content_hash(definition: Mapping[str, Any], source_hashes: Mapping[str, str]) -> str:
    """A short hash of a pipeline's definition and all its source directories' contents."""
    blob = json.dumps(
        {"definition": definition, "sources": dict(sorted(source_hashes.items()))},
        sort_keys=True,
        default=str,
    ).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
