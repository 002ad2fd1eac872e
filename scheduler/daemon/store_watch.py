"""The daemon's watch over its store: can it be written now (``/healthz``, STATUS=), the
disk ballast given back while the disk is full, the catch-up once an outage has ended, and
SQLite's WAL kept small.

Every store call goes to the store's thread and every filesystem call to a worker thread: the
watch runs on the daemon's event loop and never blocks it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog

from scheduler.core.clock import Clock
from scheduler.core.loopguard import run_blocking, run_parallel
from scheduler.daemon.ballast import Ballast
from scheduler.store import Store

log = structlog.get_logger("scheduler.daemon.store_watch")

STORE_PROBE_SECONDS = 3.0  # how soon /healthz and STATUS= see that the store cannot be written
CHECKPOINT_SECONDS = 60.0  # SQLite's WAL is truncated at least this often...
CHECKPOINT_WAL_BYTES = 8 * 1024 * 1024  # ...and at the next probe once it grew past this


class StoreAlerts(Protocol):
    """Who is told when the store stops or starts taking writes (the alert sender)."""

    def store_unwritable(self, reason: str) -> None: ...
    def store_writable(self, was: str | None) -> None: ...


class StoreWatch:
    """``on_change()`` when the store's writability changes (the daemon updates STATUS=);
    ``after_outage()`` once the store is writable again after an outage."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        ballast: Ballast | None,
        *,
        on_change: Callable[[], None],
        after_outage: Callable[[], Awaitable[None]],
        alerts: StoreAlerts | None = None,
    ) -> None:
        self.store, self.clock, self.ballast = store, clock, ballast
        self.on_change, self.after_outage = on_change, after_outage
        self.alerts = alerts

    async def run(self) -> None:
        """Probe every few seconds whether the store can be written (``Store.probe_write``);
        log an outage once when it begins and once when it ends, and say so in STATUS=. When
        the disk is full, give back the ballast so the writes held in memory can go through.
        Once an outage has ended, however short it was, catch up on what it deferred
        (``after_outage``). Keep SQLite's WAL bounded: truncate it every minute, and sooner
        once it grew past a few MB."""
        was: str | None = None
        caught_up = self.store.health.outages
        last_checkpoint = self.clock.monotonic()
        while True:
            await asyncio.sleep(STORE_PROBE_SECONDS)
            try:
                now = await run_blocking(self.store.probe_write)
            except Exception as exc:  # not the database's words: count it as the reason
                self.store.health.failed(f"{type(exc).__name__}: {exc}")
                now = self.store.health.unwritable
            if now != was:
                if now is not None and was is None:
                    log.error("store_unwritable", reason=now)
                    if self.alerts is not None:
                        self.alerts.store_unwritable(now)
                elif now is None:
                    log.info("store_writable_again", was=was)
                    if self.alerts is not None:
                        self.alerts.store_writable(was)
                was = now
                self.on_change()
            await self._keep_ballast(now)
            if now is not None:
                continue
            if self.store.health.outages != caught_up:
                caught_up = self.store.health.outages
                await self.after_outage()
            overdue = self.clock.monotonic() - last_checkpoint >= CHECKPOINT_SECONDS
            try:
                if overdue or await run_blocking(self.store.wal_bytes) > CHECKPOINT_WAL_BYTES:
                    last_checkpoint = self.clock.monotonic()
                    done = await run_blocking(self.store.checkpoint)
                    log.debug("store_checkpointed", complete=done)
            except Exception as exc:  # the next round tries again
                log.warning("store_checkpoint_failed", error=str(exc))

    async def _keep_ballast(self, unwritable: str | None) -> None:
        """Give the ballast back while the disk is full; take it again once there is room."""
        if self.ballast is None:
            return
        try:
            if unwritable is not None and "full" in unwritable:
                await run_parallel(self.ballast.release)
            elif unwritable is None:
                await run_parallel(self.ballast.ensure)
        except OSError as exc:
            log.warning("ballast_failed", error=str(exc))
