"""Keeping the daemon's PostgreSQL advisory lock: it dies with its connection (a server restart, a
proxy cut, ``pg_terminate_backend``), and another daemon could then take it while this one goes
on firing. SQLite's flock cannot be lost; there this keeper returns at once.

Every second the keeper asks the server whether it still grants the lock to the daemon's session
(``DaemonLock.check``). When it does not, the store is fenced in the same call on the store's
thread, so no write handed over after the check reaches the database (``Store.fence``; /healthz
answers 503 with the reason). Then it takes the lock again on a new connection, retrying with
backoff while the server cannot be reached:

- taken again: ``daemon_lock_retaken``, the store is unfenced (health clears at the next probe);
- another daemon holds it: ``daemon_lock_lost`` names the holder and ``on_lost`` is called, so
  the daemon stops firing and exits 1. The store stays fenced to the end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from sqlalchemy.exc import DBAPIError

from scheduler.core.loopguard import run_blocking
from scheduler.daemon.lock import DaemonLock, Retake
from scheduler.store import Store
from scheduler.store.health import failure_reason

log = structlog.get_logger("scheduler.daemon.lock_watch")

CHECK_SECONDS = 1.0
RETRY_FIRST_SECONDS = 0.25  # an ended session of ours may take a moment to let the lock go
RETRY_MAX_SECONDS = 10.0
FENCE_PREFIX = "daemon lock lost: "


async def keep_daemon_lock(lock: DaemonLock, store: Store, on_lost: Callable[[str], None]) -> None:
    """Check the lock every second, retake it when lost; returns only after calling
    ``on_lost`` with a message naming the other holder (or at once on SQLite)."""
    if not lock.on_database:
        return
    while True:
        await asyncio.sleep(CHECK_SECONDS)
        reason = await run_blocking(_check_or_fence, lock, store)
        if reason is None:
            continue
        log.error("daemon_lock_connection_lost", reason=reason, writes="fenced")
        holder = await _retake(lock, store)
        if holder is not None:
            message = f"another pipesched daemon holds this PostgreSQL database: {holder}"
            log.error("daemon_lock_lost", holder=holder, error=message, action="exiting")
            on_lost(message)
            return


def _check_or_fence(lock: DaemonLock, store: Store) -> str | None:
    """On the store's thread: None while the lock is held; else fence the store before any
    write queued behind this call can run, and say why."""
    reason = lock.check()
    if reason is not None:
        store.fence(FENCE_PREFIX + reason)
    return reason


def _retake_or_wait(lock: DaemonLock, store: Store) -> Retake:
    """On the store's thread: one try; unfence as soon as the lock is ours again."""
    outcome = lock.retake()
    if outcome.taken:
        store.unfence()
    return outcome


async def _retake(lock: DaemonLock, store: Store) -> str | None:
    """Try until the lock is ours again (None) or another daemon's (its description)."""
    delay = RETRY_FIRST_SECONDS
    tries = 0
    while True:
        tries += 1
        try:
            outcome = await run_blocking(_retake_or_wait, lock, store)
        except Exception as exc:  # the server cannot be reached (yet): the gate stays closed
            error = failure_reason(exc) if isinstance(exc, DBAPIError) else repr(exc)
            log.warning("daemon_lock_retake_failed", error=error, retry_in=delay)
        else:
            if outcome.taken:
                log.info("daemon_lock_retaken", tries=tries, session=lock.name)
                return None
            if outcome.holder is not None:
                return outcome.holder
        await asyncio.sleep(delay)
        delay = min(delay * 2, RETRY_MAX_SECONDS)
