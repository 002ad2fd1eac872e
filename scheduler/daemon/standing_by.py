"""A standby's wait for the lead: a read-only API meanwhile, then the lock, a new epoch and the
lease kept from the first moment of the lead. Apart from ``standby`` (the store-level moves of
waiting and taking over) because it starts the API servers, as the daemon's lifecycle does."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scheduler.core.clock import Clock
from scheduler.core.loopguard import run_blocking
from scheduler.daemon.api_servers import start_api
from scheduler.daemon.lock import DaemonLock
from scheduler.daemon.notify import Notifier
from scheduler.daemon.standby import Identity, keep_lease, leader_words, wait_for_lead
from scheduler.daemon.standby_api import StandbyControls
from scheduler.definitions.config import Config, HaConfig
from scheduler.store import Store
from scheduler.store.records import Leadership


class StoodDown(Exception):
    """A standby was asked to stop before it ever led."""


@dataclass(frozen=True)
class Lead:
    """What a standby holds once it leads."""

    lock: DaemonLock
    epoch: int
    replaced: Leadership | None  # the leadership it took over
    lease_keeper: asyncio.Task[None]


async def stand_by_until_leading(
    *,
    config: Config,
    ha: HaConfig,
    store: Store,
    clock: Clock,
    started_at: datetime,
    me: Identity,
    notifier: Notifier,
    on_lost: Callable[[str], None],
) -> Lead:
    """Wait as a standby while another daemon leads (a read-only API meanwhile), then lead
    under a new epoch; SIGTERM or SIGINT meanwhile raise StoodDown."""
    seen: list[Leadership] = []
    servers: list[Any] = []

    async def standing_by(leadership: Leadership) -> None:
        changed = not seen or seen[-1].holder != leadership.holder
        seen[:] = [leadership]
        if not servers:
            controls = StandbyControls(started_at, lambda: seen[-1], config, store, clock)
            servers.extend(
                await start_api(config, controls, store, clock, None, lambda: seen[-1].api_url)
            )
            me.api_url = servers[0].url  # the TCP listener comes first
        if changed:
            notifier.ready(f"standby; leader {leader_words(leadership)}")

    loop = asyncio.get_running_loop()
    waiting = asyncio.ensure_future(
        wait_for_lead(store, config.state_dir, started_at, ha, me, standing_by)
    )
    for sig in (signal.SIGTERM, signal.SIGINT):  # a standby stops at once: it runs nothing
        loop.add_signal_handler(sig, waiting.cancel)
    try:
        lock, epoch, replaced = await waiting
        # From the first moment of the lead: a daemon replaced while it still starts up
        # (recovering, catching up) must hear of it too.
        keeper = asyncio.create_task(keep_lease(store, epoch, ha, me, on_lost))
    except asyncio.CancelledError:
        notifier.stopping("stopping (standby)")
        with contextlib.suppress(Exception):
            await run_blocking(store.forget_daemons, name=me.name)
        raise StoodDown from None
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        for server in servers:
            await server.stop()
    return Lead(lock, epoch, replaced, keeper)
