"""Blocking work never runs on an event loop's thread: store calls and source hashing are handed
to threads, and a guard (on under ``PIPESCHED_ASSERT_OFF_LOOP=1``) catches any that slip back.

The daemon owns one asyncio loop; a store call or a hash of a source tree made on it stalls every
timer and file watcher behind it. Two doors lead off the loop:

- ``run_blocking`` (and ``submit_blocking``): the store's thread. One thread, shared by every loop
  of the process, runs these calls one at a time in the order they were handed over, so the
  database sees the loop's calls in the order the loop made them, as when they ran on the loop
  itself. A write handed over before a read (even from another task, or from plain code on the
  loop that cannot await, such as a cancel) is committed before that read runs; and two writes of
  one run are never reordered even when their coroutines do not wait for each other. A pool would
  keep neither promise. Each call still commits before its awaiter resumes, so a write reported
  after an ``await`` survives a crash. The price: a call that waits (on a lock another connection
  holds) holds up the calls behind it, as it used to hold up the whole loop; timers, signals and
  the watchdog's pings go on meanwhile.
- ``run_parallel``: any worker thread, for long work that must not hold up the store's queue
  (hashing a source tree, listing an input folder).

The guard (``assert_off_loop``) is on only when ``PIPESCHED_ASSERT_OFF_LOOP=1`` (the daemon tests
set it), so a call that slips back onto the loop fails a test instead of adding latency.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

ENV_VAR = "PIPESCHED_ASSERT_OFF_LOOP"
STORE_THREAD_NAME = "pipesched-store"

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


_store_executor: ThreadPoolExecutor | None = None
_store_executor_lock = threading.Lock()


def _store_thread() -> ThreadPoolExecutor:
    global _store_executor
    with _store_executor_lock:
        if _store_executor is None:
            _store_executor = ThreadPoolExecutor(1, thread_name_prefix=STORE_THREAD_NAME)
        return _store_executor


def submit_blocking(
    func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
) -> asyncio.Future[T]:
    """Queue ``func`` on the store's thread now and return a future of its result; for code on
    the loop that cannot await but must keep its place in the order (see the module docstring).
    Must be called on the loop's thread."""
    loop = asyncio.get_running_loop()
    call = functools.partial(contextvars.copy_context().run, func, *args, **kwargs)
    return loop.run_in_executor(_store_thread(), call)


async def run_blocking(func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``func`` on the store's thread, after every call handed over before it, and wait for
    it without blocking the loop."""
    return await submit_blocking(func, *args, **kwargs)


async def run_parallel(func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``func`` in any worker thread (no order kept) and wait for it without blocking the
    loop: for long work such as hashing that must not hold up the store's queue."""
    return await asyncio.to_thread(func, *args, **kwargs)
