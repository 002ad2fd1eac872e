"""Several daemons on one PostgreSQL store, one leading (``ha.mode: standby``).

A daemon that finds the store's lock held waits as a standby: it says so to systemd (READY=1,
``STATUS=standby; leader ...``), serves the API read-only, writes its heartbeat, and tries the
lock every fraction of a heartbeat. The lock comes free the moment the leader's database
session ends (``kill -9``, a clean stop). A leader that is alive to the server but no longer
renews its lease (stopped, cut off) is ended by the standby once the lease has lapsed on the
database's clock (``pg_terminate_backend``), and the lock is taken then.

The new leader raises the epoch (``Store.take_leadership``) and leads under it
(``Store.lead``): from then on the database refuses any write of the old leader. It renews its
lease every heartbeat (``keep_lease``); when it cannot, it fences its own store before the
lease can lapse, so it neither fires nor starts a step while another daemon may take over.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from scheduler import __version__
from scheduler.core.clock import iso
from scheduler.core.errors import PipeschedError
from scheduler.core.loopguard import run_blocking
from scheduler.daemon.lock import (
    DaemonLock,
    holder_description,
    lock_label,
    take_file_lock,
    try_database_lock,
)
from scheduler.daemon.recovery import close_runs_of_lost_leader
from scheduler.definitions.config import HaConfig
from scheduler.store import Store
from scheduler.store.daemon_lock import LockHolder, end_lock_session, lock_engine, session_name
from scheduler.store.health import failure_reason
from scheduler.store.migrate import HEAD_REVISION, SchemaTooNew
from scheduler.store.records import DaemonBeat, Leadership

log = structlog.get_logger("scheduler.daemon.standby")

TRY_EVERY_MAX = 0.5  # seconds between tries of the lock, at most
FORGET_AFTER_LEASES = 10  # a daemon silent this many leases is gone: its heartbeat row goes
LOST_LEADER_POLL_SECONDS = 2.0  # how often runs of a replaced leader still alive here are looked at


@dataclass
class Identity:
    """How this daemon names itself to the others."""

    name: str
    host: str
    pid: int
    started_at: datetime
    api_url: str | None

    @classmethod
    def of(cls, started_at: datetime, api_url: str | None) -> Identity:
        host, pid = socket.gethostname(), os.getpid()
        return cls(f"{host}:{pid}:{iso(started_at)}", host, pid, started_at, api_url)

    def beat(self, role: str, epoch: int, lease: float) -> DaemonBeat:
        return DaemonBeat(
            name=self.name,
            host=self.host,
            pid=self.pid,
            started_at=self.started_at,
            role=role,
            epoch=epoch,
            heartbeat_at=self.started_at,  # the database's now is written instead
            lease_seconds=lease,
            schema_revision=HEAD_REVISION,
            version=__version__,
            api_url=self.api_url,
        )


def leader_words(leadership: Leadership) -> str:
    """``HOST:PID since ISO (epoch N)``: the leader as a standby names it."""
    if leadership.holder is None:
        return "none yet"
    return f"{leadership.host}:{leadership.pid} since {iso(leadership.since)} (epoch {leadership.epoch})"


async def wait_for_lead(
    store: Store,
    state_dir: Any,
    started_at: datetime,
    ha: HaConfig,
    me: Identity,
    on_standby: Callable[[Leadership], Awaitable[None]],
) -> tuple[DaemonLock, int, Leadership]:
    """The store's lock, the epoch this daemon now leads and the leadership it replaced, after waiting as a standby for as
    long as another daemon leads. ``on_standby`` is awaited with the leadership each time this
    daemon finds the lock held (it starts the read-only API and tells systemd)."""
    handle = await run_blocking(take_file_lock, state_dir, holder_description(started_at))
    label = lock_label(holder_description(started_at))
    engine = lock_engine(store.engine.url)
    standing_by = False
    waited_from = time.monotonic()
    last_beat = 0.0
    interval = min(TRY_EVERY_MAX, ha.heartbeat / 4)
    leadership_seen: Leadership | None = None
    try:
        while True:
            try:
                taken = await run_blocking(try_database_lock, handle, engine, label)
            except DBAPIError as exc:
                log.warning("ha_lock_try_failed", error=failure_reason(exc), retry_in=interval)
                taken = None
            if isinstance(taken, DaemonLock):
                if await run_blocking(store.schema_behind) < 0:
                    await run_blocking(taken.release)
                    raise await _too_old(store)
                await run_blocking(store.migrate_now)  # only a leader migrates
                epoch, previous = await _take_the_lead(store, me, ha)
                log.info(
                    "ha_leader",
                    epoch=epoch,
                    previous=leader_words(previous),
                    waited_seconds=round(time.monotonic() - waited_from, 3),
                )
                return taken, epoch, previous
            leadership = await _leadership_or_unknown(store, leadership_seen)
            leadership_seen = leadership
            if not standing_by:
                standing_by = True
                log.info("ha_standby", leader=leader_words(leadership), epoch=leadership.epoch)
            await on_standby(leadership)
            now = time.monotonic()
            if now - last_beat >= ha.heartbeat:
                last_beat = now
                with contextlib.suppress(Exception):  # a missed heartbeat is only a stale row
                    await run_blocking(store.beat, me.beat("standby", leadership.epoch, ha.lease))
            if isinstance(taken, LockHolder) and leadership.lease_lapsed:
                await run_blocking(_end_session, engine, taken, leadership)
            await asyncio.sleep(interval)
    except BaseException:
        engine.dispose()
        with contextlib.suppress(OSError):
            handle.close()
        raise


def leader_session_name(leadership: Leadership) -> str | None:
    """The name of the lock's session of the leader ``leadership`` names (``HOST:PID:STARTED``
    → the lock's label), as the server keeps it; None when nobody leads."""
    if leadership.holder is None:
        return None
    host, _, rest = leadership.holder.partition(":")
    pid, _, started_at = rest.partition(":")
    return session_name(lock_label({"host": host, "pid": pid, "started_at": started_at}))


async def _leadership_or_unknown(store: Store, last: Leadership | None) -> Leadership:
    """The leadership as the store says, or what was last seen while it cannot say (an older
    schema without the table, a read that failed): a standby keeps waiting either way."""
    try:
        return await run_blocking(store.leadership)
    except Exception as exc:
        log.warning("ha_leadership_unreadable", error=_words(exc))
        if last is not None:
            return last
        return Leadership(0, None, None, None, None, None, None, datetime.now(UTC))


async def _too_old(store: Store) -> PipeschedError:
    """Why this daemon may not lead: a newer pipesched has migrated the store."""
    with contextlib.suppress(Exception):
        newer = [
            b for b in await run_blocking(store.daemon_beats) if b.schema_revision > HEAD_REVISION
        ]
        if newer:
            return SchemaTooNew(
                f"the store is at a newer schema than this pipesched knows ({HEAD_REVISION}); "
                f"{newer[0].name} runs pipesched {newer[0].version} (schema {newer[0].schema_revision})",
                hint=f"upgrade this daemon to pipesched {newer[0].version} or later",
            )
    return SchemaTooNew(
        f"the store is at a newer schema than this pipesched knows ({HEAD_REVISION})",
        hint="upgrade this daemon to the version the other daemons run",
    )


async def _take_the_lead(store: Store, me: Identity, ha: HaConfig) -> tuple[int, Leadership]:
    """Raise the epoch (retrying if another daemon raised it between our read and write: it
    cannot hold the lock, so it is an older leader's last act) and lead under it."""
    while True:
        previous = await run_blocking(store.leadership)
        try:
            epoch = await run_blocking(
                store.take_leadership,
                seen_epoch=previous.epoch,
                holder=me.name,
                host=me.host,
                pid=me.pid,
                api_url=me.api_url,
                lease=ha.lease,
            )
        except DBAPIError as exc:  # the old leader's write holds the row: once more
            log.warning("ha_takeover_waiting", error=failure_reason(exc))
            await asyncio.sleep(min(TRY_EVERY_MAX, ha.heartbeat))
            continue
        if epoch is not None:
            store.lead(epoch)
            store.unfence()
            return epoch, previous


def _end_session(engine: Engine, holder: LockHolder, leadership: Leadership) -> None:
    """End the database session of a leader whose lease has lapsed: it still holds the lock
    (stopped, or cut off without the server noticing), and has fenced itself by now. Only the
    session of the leader the leadership row names: by the time we look, another standby may
    have taken over, and its session must be left alone."""
    expected = leader_session_name(leadership)
    if expected is None or holder.application_name != expected:
        return
    ended = end_lock_session(engine, holder.pid, expected)
    if not ended:
        return
    log.warning(
        "ha_takeover",
        leader=leader_words(leadership),
        lease_until=iso(leadership.lease_until),
        terminated_session=holder.describe(),
        ended=bool(ended),
    )


async def keep_lease(
    store: Store, epoch: int, ha: HaConfig, me: Identity, on_lost: Callable[[str], None]
) -> None:
    """Renew the lease every heartbeat. While renewals fail, fence the store before the lease
    can lapse (and let it through again once a renewal succeeds: the epoch is still ours).
    When the epoch has moved on, fence for good and call ``on_lost``."""
    renewed_at = time.monotonic()  # when the last renewal that succeeded was sent
    fenced = False
    margin = min(1.0, ha.heartbeat)

    async def renew() -> bool | None:
        """True renewed, False the epoch is over, None the database did not answer."""
        try:
            return await asyncio.wait_for(
                run_blocking(store.renew_lease, epoch, ha.lease, me.api_url), ha.heartbeat
            )
        except Exception as exc:
            log.warning("ha_lease_renewal_failed", error=_words(exc), epoch=epoch)
            return None

    async def guard() -> None:
        nonlocal fenced
        while True:
            await asyncio.sleep(0.1)
            late = time.monotonic() - renewed_at
            if not fenced and late > ha.lease - margin:
                fenced = True
                store.fence(f"lease not renewed for {late:.1f}s (ha.lease {ha.lease:g}s)")
                log.error("ha_fenced", epoch=epoch, unrenewed_seconds=round(late, 2))

    watch = asyncio.ensure_future(guard())
    try:
        while True:
            sent = time.monotonic()
            outcome = await renew()
            if outcome is False:
                message = "another daemon leads this store now (the epoch moved on)"
                store.fence(message)
                log.error("ha_lease_lost", epoch=epoch, action="exiting")
                on_lost(message)
                return
            if outcome is True:
                renewed_at = sent
                if fenced:
                    fenced = False
                    store.unfence()
                    log.info("ha_unfenced", epoch=epoch)
                with contextlib.suppress(Exception):
                    await run_blocking(store.beat, me.beat("leader", epoch, ha.lease))
                    await run_blocking(
                        store.forget_daemons, silent_for=FORGET_AFTER_LEASES * ha.lease
                    )
            await asyncio.sleep(max(0.0, ha.heartbeat - (time.monotonic() - sent)))
    finally:
        watch.cancel()


def _words(exc: BaseException) -> str:
    if isinstance(exc, DBAPIError):
        return failure_reason(exc)
    if isinstance(exc, TimeoutError):
        return "no answer within a heartbeat"
    return repr(exc)


async def close_lost_leader_runs(store: Store, previous: Leadership) -> None:
    """Once the replaced leader's lease has lapsed, close the runs it owned (``failed: leader
    lost``); runs of a leader still alive on this host are closed when it exits."""
    if previous.host is None or previous.pid is None:
        return
    left = 0.0
    if previous.lease_until is not None:
        left = (previous.lease_until - previous.server_now).total_seconds()
    await asyncio.sleep(max(0.0, left) + 0.1)
    while True:
        try:
            waiting = await run_blocking(
                close_runs_of_lost_leader, store, previous.host, previous.pid
            )
        except Exception as exc:  # the store is out: try again later
            log.warning("ha_lost_leader_runs_unclosed", error=_words(exc))
            waiting = 1
        if not waiting:
            return
        await asyncio.sleep(LOST_LEADER_POLL_SECONDS)
