"""Listings of validated definitions (what ``pipesched schedules`` and ``pipesched pipelines``
need of them) as plain JSON, cached by the content of everything they were made from.

Validating schedules and pipelines takes pydantic, whose import alone costs a read command more
than its read. A listing is only ever a copy of what the full loaders made: it records every file
it came from with the SHA-256 of its content (or its absence), the folder listings that decided
which files count, what each path whose existence was checked is, the facts a caller read elsewhere (the
store's published versions, its API schedules) and pipesched's own code (by size and mtime), and
it is used only while all of them are unchanged.

Listings live beside the compiled plans, in the user's cache folder
(``$XDG_CACHE_HOME/pipesched/listings``, else ``~/.cache/pipesched/listings``), private (folder
0700, files 0600). One that cannot be read, parsed or trusted is simply not used.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scheduler.definitions import json_cache
from scheduler.definitions.json_cache import file_digest, folder_listing

if TYPE_CHECKING:
    from scheduler.definitions.config import Config

PIPELINE_FILE = "pipeline.yaml"  # ``definitions.pipeline.PIPELINE_FILE`` (a test holds them equal)
#: Bumped whenever a listing's fields change meaning.
LISTING_FORMAT = 1
#: Packages whose code shapes a listing: a change to one (a development checkout) rebuilds it.
_SHAPING_PACKAGES = ("definitions", "services", "triggers", "store")


def cache_dir() -> Path:
    return json_cache.cache_dir("listings")


def listing_path(kind: str, config_file: Path) -> Path:
    """Where the ``kind`` listing of the config at ``config_file`` is kept."""
    return json_cache.keyed_path(cache_dir(), [kind, os.path.abspath(config_file)])


def _code_stamp() -> list[list[Any]]:
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    stamp: list[list[Any]] = []
    for name in _SHAPING_PACKAGES:
        folder = os.path.join(package, name)
        for entry in sorted(folder_listing(folder) or []):
            if not entry.endswith(".py"):
                continue
            try:
                info = os.stat(os.path.join(folder, entry))
            except OSError:
                continue
            stamp.append([name, entry, info.st_size, info.st_mtime_ns])
    return stamp


def _kind(path: str) -> str | None:
    if os.path.isfile(path):
        return "file"
    return "folder" if os.path.isdir(path) else None


def sources(
    files: Iterable[str],
    folders: Iterable[str],
    checked: Iterable[str],
    facts: Mapping[str, Any],
) -> dict[str, Any]:
    """What a listing is made from, as it stands now: each file's digest, each folder's names,
    what each ``checked`` path is (a file, a folder or nothing), the caller's ``facts`` and the
    code."""
    return {
        "files": {path: file_digest(path) for path in sorted(set(files))},
        "folders": {path: folder_listing(path) for path in sorted(set(folders))},
        "checked": {path: _kind(path) for path in sorted(set(checked))},
        "facts": json.loads(json.dumps(facts)),
        "code": _code_stamp(),
        "format": LISTING_FORMAT,
    }


def config_facts(config: Config) -> list[str]:
    """What the config resolved to (the environment may move its state folder)."""
    return [
        str(config.file),
        str(config.state_dir),
        str(config.pipelines_dir),
        str(config.schedules_file),
        config.database_written or config.database_url,  # never a secret's value on disk
    ]


def definition_files(config: Config) -> tuple[list[str], list[str]]:
    """The files and folders that decide which definitions there are and what they say: the
    config, the schedules file, each folder's pipeline.yaml under ``pipelines_dir`` (present
    or not), and the published snapshots' folder."""
    pipelines_dir = str(config.pipelines_dir)
    files = [str(config.file), str(config.schedules_file)]
    files += [
        os.path.join(pipelines_dir, name, PIPELINE_FILE)
        for name in folder_listing(pipelines_dir) or []
        if not name.startswith(".")
    ]
    return files, [pipelines_dir, str(config.state_dir / "published")]


def checked_paths(
    valid: Iterable[tuple[Iterable[str], Iterable[str]]],
) -> dict[str, str] | None:
    """The step folders and files valid pipelines rest on (``(folders, files)`` of each), each
    with the kind it must be; None when one already is not (removed while it was checked)."""
    wanted: dict[str, str] = {}
    for folders, files in valid:
        wanted.update(dict.fromkeys(folders, "folder"))
        wanted.update(dict.fromkeys(files, "file"))
    return wanted if sources([], [], wanted, {})["checked"] == wanted else None


def load_listing(kind: str, config_file: Path, facts: Mapping[str, Any]) -> dict[str, Any] | None:
    """The cached listing when everything it was made from is unchanged (``facts`` as the
    caller reads them now); None otherwise."""
    try:
        with open(listing_path(kind, config_file), "rb") as handle:
            listing: dict[str, Any] = json.loads(handle.read())
        recorded = listing["sources"]
        current = sources(recorded["files"], recorded["folders"], recorded["checked"], facts)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return listing if current == recorded else None


def save_listing(kind: str, config_file: Path, listing: Mapping[str, Any]) -> None:
    """Write ``listing`` for the next command, atomically and privately; a failure only costs
    speed."""
    json_cache.save_json(listing_path(kind, config_file), listing)
