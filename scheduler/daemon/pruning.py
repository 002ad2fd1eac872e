"""The daemon's daily prune: ``retention`` applied a few minutes after start, then every 24 h.

Times are read on the daemon's clock (a test clock drives it), polled every second of real
time, so a clock that jumps a day ahead prunes at once. Only a leading daemon serves, so only
the leader prunes. The prune itself blocks (folder walks, a transaction per page of runs) and
runs in a worker thread; a failing one (disk or store error) is logged and tried again at the
next day's time, never taking the daemon down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from scheduler.core.clock import Clock
from scheduler.core.loopguard import run_parallel
from scheduler.definitions.config import Config
from scheduler.services.retention import prune
from scheduler.store import Store

log = structlog.get_logger("scheduler.daemon.pruning")

FIRST_PRUNE_AFTER = timedelta(minutes=5)  # after start: let recovery and catch-up go first
PRUNE_EVERY = timedelta(days=1)
POLL_SECONDS = 1.0


async def prune_daily(config: Callable[[], Config], store: Store, clock: Clock) -> None:
    """Prune at start + ``FIRST_PRUNE_AFTER``, then every ``PRUNE_EVERY``, until canceled;
    ``config()`` is the config served now (a reload may change ``retention``)."""
    due = clock.now() + FIRST_PRUNE_AFTER
    while True:
        await _until(clock, due)
        await prune_once(config(), store, clock)
        due = _next_due(due, clock.now())


async def prune_once(config: Config, store: Store, clock: Clock) -> None:
    """One prune, logged as ``prune_done`` (or ``prune_failed``); never raises but a cancel."""
    try:
        report = await run_parallel(prune, config, store, clock)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the disk, the store: the next day's prune tries again
        log.error(
            "prune_failed",
            error=f"{type(exc).__name__}: {exc}",
            action="tried again at the next daily prune",
        )
        return
    log.info(
        "prune_done",
        runs=report.runs,
        runs_by_pipeline=report.runs_by_pipeline,
        bytes_freed=report.bytes_freed,
        bytes_by_kind=report.bytes_by_kind,
        fire_rows=report.fire_rows,
        ledger_rows_kept=report.ledger_rows_kept,
        leftover_folders=report.leftover_folders,
        transactions=report.transactions,
        longest_transaction_seconds=round(report.longest_transaction_seconds, 4),
        seconds=round(report.seconds, 3),
    )


def _next_due(due: datetime, now: datetime) -> datetime:
    """The next daily time after ``now``: a day skipped (the clock jumped, the host slept)
    is not made up with several prunes in a row."""
    due += PRUNE_EVERY
    while due <= now:
        due += PRUNE_EVERY
    return due


async def _until(clock: Clock, due: datetime) -> None:
    while clock.now() < due:
        await asyncio.sleep(POLL_SECONDS)
