"""A guard for blocking work: store calls and source hashing never run on an event loop's thread.

The daemon owns one asyncio loop; a store call or a hash of a source tree made on it stalls every
timer and file watcher behind it. Callers on the loop hand such work to a worker thread
(``run_blocking``). The guard is on only when ``PIPESCHED_ASSERT_OFF_LOOP=1`` (the daemon tests set
it), so that a call that slips back onto the loop fails a test instead of adding latency.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import ParamSpec, TypeVar

ENV_VAR = "PIPESCHED_ASSERT_OFF_LOOP"

P = ParamSpec("P")
T = TypeVar("T")


class BlockingOnLoop(AssertionError):
    """Blocking work ran on the event loop's thread; hand it to ``run_blocking``."""


def guard_enabled() -> bool:
    return os.environ.get(ENV_VAR) == "1"


def assert_off_loop(what: str) -> None:
    """Raise ``BlockingOnLoop`` when the guard is on and this thread runs an event loop."""
    if not guard_enabled():
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise BlockingOnLoop(f"{what} ran on the event loop's thread; hand it to run_blocking")


async def run_blocking(func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``func`` in a worker thread and wait for it without blocking the loop."""
    return await asyncio.to_thread(func, *args, **kwargs)
