"""Python's cyclic garbage collector during the daemon's start-up.

Start-up builds objects by the hundred thousand (the parsed schedules file, a model and a
trigger per schedule, store rows) and frees few of them. Each burst of allocations sets off a
collection, and every full one walks the whole heap, the imported packages included: with ten
thousand schedules that walking costs a large share of the start. So the collector rests from
the start until READY, and what was imported before it is frozen (never walked again: modules,
classes and functions live as long as the process). Whatever start-up leaves behind in cycles is
collected as usual once the collector runs again.
"""

from __future__ import annotations

import gc


def rest_until_ready() -> None:
    """Freeze what is loaded so far and pause the collector (see ``running_again``)."""
    gc.freeze()
    gc.disable()


def running_again() -> None:
    """The collector runs again (at READY, or when the daemon stops short of it)."""
    gc.enable()
