"""Where a step's process runs: ``local.py`` (subprocesses on this machine), ``dask.py`` (a Dask
distributed cluster, with the ``pipesched[dask]`` extra)."""

from __future__ import annotations

import importlib.util

#: compute target type -> module that implements it
COMPUTE_MODULES = {"local": "scheduler.compute.local", "dask": "scheduler.compute.dask"}


def available_compute_types() -> frozenset[str]:
    """Target types that can run steps here: the module exists (and, for dask, Dask is installed)."""
    found = {name for name, mod in COMPUTE_MODULES.items() if importlib.util.find_spec(mod)}
    if "dask" in found and importlib.util.find_spec("distributed") is None:
        found.discard("dask")
    return frozenset(found)
