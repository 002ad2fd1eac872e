"""``warm_imports: auto``: the modules a target's forked steps imported, noted at their exits
and kept in ``<state_dir>/warm/<target>.imports.json`` for its zygote to import."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

AUTO = ("auto",)
MAX_LEARNED = 200  # modules an ``auto`` target's zygote imports at most
#: Never preloaded: pipesched's own modules, and names that stand for the step itself.
_NOT_LEARNED = frozenset({"__main__", "scheduler", "azureml", "azureml_user", "sitecustomize"})


def learned_imports(folder: Path, target: str) -> tuple[str, ...]:
    """What the forked steps of an ``auto`` target imported, as noted at their exits."""
    try:
        names = json.loads((folder / f"{target}.imports.json").read_text())
    except (OSError, ValueError):
        return ()
    if not isinstance(names, list):
        return ()
    return tuple(n for n in names if isinstance(n, str) and n.isidentifier())[:MAX_LEARNED]


def record_imports(folder: Path, target: str, names: Iterable[str]) -> bool:
    """Add ``names`` to an ``auto`` target's learned imports; True when the list grew."""
    known = learned_imports(folder, target)
    new = [
        n
        for n in sorted(set(names))
        if n not in known and n not in _NOT_LEARNED and n.isidentifier() and not n.startswith("_")
    ]
    if not new or len(known) >= MAX_LEARNED:
        return False
    path = folder / f"{target}.imports.json"
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps([*known, *new][:MAX_LEARNED]))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return True
