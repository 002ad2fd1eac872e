"""Copied as ``sitecustomize.py`` into a folder the executor puts first on a step's
``PYTHONPATH``; Python imports it while it starts, after site-packages and ``.pth`` files.

It takes its own folder off ``sys.path`` (so it shadows nothing), appends to the end of
``sys.meta_path`` a finder that serves ``azureml`` and ``azureml_user`` from the ``packages``
folder beside it, and then imports the ``sitecustomize`` it hid, if there is one. Standard
library only: it runs on whatever interpreter the step uses.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

NAMES = ("azureml", "azureml_user")


class StandInFinder:
    """Last on ``sys.meta_path``: asked only for what no other finder found."""

    def __init__(self, packages: str) -> None:
        self.packages = packages

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        top = fullname.partition(".")[0]
        if top not in NAMES:
            return None
        if fullname == top:
            return importlib.machinery.PathFinder.find_spec(fullname, [self.packages])
        parent = sys.modules.get(top)
        origin = getattr(parent, "__file__", None) or ""
        if os.path.dirname(os.path.dirname(origin)) != self.packages:
            return None  # a real azureml (a namespace package, say) that lacks this submodule
        # Ours, and it has no such submodule: say why, and what to use instead.
        if top == "azureml":
            message = importlib.import_module("azureml._pipesched").missing_module(fullname)
        else:
            message = (
                f"module {fullname} is not available in a pipesched step: pipesched's "
                "azureml_user has parallel_run.EntryScript only"
            )
        raise ModuleNotFoundError(message, name=fullname)

    def invalidate_caches(self) -> None:
        """Nothing cached: PathFinder keeps its own."""


def _same(a: str, b: str) -> bool:
    return os.path.realpath(a or os.curdir) == os.path.realpath(b)


def install() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    packages = os.path.join(os.path.dirname(here), "packages")
    sys.path[:] = [entry for entry in sys.path if not _same(entry, here)]
    if not any(isinstance(finder, StandInFinder) for finder in sys.meta_path):
        sys.meta_path.append(StandInFinder(packages))


def import_hidden_sitecustomize() -> None:
    """The interpreter's or the user's own ``sitecustomize``, which this file stood in front of."""
    this = sys.modules.pop("sitecustomize", None)
    try:
        importlib.import_module("sitecustomize")
    except ModuleNotFoundError as exc:
        if exc.name != "sitecustomize":
            raise
    finally:
        if "sitecustomize" not in sys.modules and this is not None:
            sys.modules["sitecustomize"] = this


if __name__ == "sitecustomize":
    try:
        install()
    except Exception as exc:  # never stop a step from starting
        print(f"[pipesched] azureml stand-in not installed: {exc!r}", file=sys.stderr)
    import_hidden_sitecustomize()
