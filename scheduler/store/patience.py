"""Writes the daemon owes wait out a store outage instead of being lost.

A step that exited 0 while another connection held the write lock, or while the disk was full,
must still end ``completed``; a run recorded for a claimed fire must still be recorded. So the
callers that record what already happened (a run's progress, a fire's outcome, a file claim's
settlement) hand their store call to ``patiently``: when the store cannot be written now
(``is_unavailable``), the call is tried again with a growing pause until it goes through,
while the outcome waits in memory, in the caller's own order. A call that fails for any other
reason (a bug, a constraint) raises at once.

Only an outage is waited out, never a refusal: SQLite reports both as ``OperationalError``,
so its message decides (locked, busy, full, I/O, read-only, cannot open). A caller that must
not wait (the claim of a fire time, which the catch-up after the outage covers instead) uses
``run_blocking`` and ``is_unavailable`` itself. The wait ends only when the store is back or
the awaiting task is cancelled (the daemon's shutdown does that after its grace).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import structlog
from sqlalchemy.exc import DBAPIError, OperationalError

from scheduler.core.loopguard import run_blocking
from scheduler.store.errors import StoreUnavailable

log = structlog.get_logger("scheduler.store.patience")

P = ParamSpec("P")
T = TypeVar("T")

FIRST_PAUSE = 0.1
LONGEST_PAUSE = 2.0

# SQLite's words for "not now" (busy, locked), "no room" (full, I/O error), and "not this file
# now" (read-only, cannot open): all pass once an operator or another writer acts.
_SQLITE_OUTAGE_WORDS = ("locked", "busy", "full", "i/o", "readonly", "read-only", "unable to open")


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says the store cannot be written now, not that the call was wrong."""
    if isinstance(exc, StoreUnavailable):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    dialect_is_sqlite = type(exc.orig).__module__.startswith("sqlite3")
    if not dialect_is_sqlite:
        return True  # PostgreSQL's OperationalError: the server or the connection is away
    words = str(exc.orig).lower()
    return any(word in words for word in _SQLITE_OUTAGE_WORDS)


async def patiently(call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``await run_blocking(call, ...)``, tried again for as long as the store is unavailable."""
    pause = FIRST_PAUSE
    waited = False
    while True:
        try:
            result = await run_blocking(call, *args, **kwargs)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            if not waited:
                log.warning("store_write_held", call=_name(call), reason=_reason(exc))
                waited = True
            await asyncio.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE)
            continue
        if waited:
            log.info("store_write_done", call=_name(call))
        return result


def _name(call: Callable[..., object]) -> str:
    return getattr(call, "__name__", type(call).__name__)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return " ".join(str(exc.orig).split())
    return str(exc)
