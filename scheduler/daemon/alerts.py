"""The daemon's alert sender: the notify outbox sent off the run path, and the alerts about the
store itself.

Failed runs and missed fires are written to the outbox by the store, in the transaction that
recorded them (``store.outbox``); this task reads the due rows every second and sends each in a
task of its own, at most ``MAX_SENDS`` at a time, so a slow or failing target never holds up a
run or another target. A failed attempt is tried again after 1 s, 2 s, 4 s ... (capped) up to
the target's ``retries``, then given up with ``notify_failed`` in the log. A row is marked
delivered only after its target took it, so a restart sends what was pending again: at least
once.

``store_unwritable`` cannot wait in the store that cannot be written: it is appended to a
private spool file in the state directory (0600) and sent at once from memory, with retries
while the outage lasts. Once the store can be written again the spool is moved into the outbox
(what was sent already as delivered, the rest pending; insert-or-ignore, so a crash midway
repeats nothing) and a ``recovered`` event joins it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog

from scheduler.core.clock import Clock
from scheduler.core.loopguard import run_blocking, run_parallel
from scheduler.definitions.config import Config
from scheduler.definitions.config_schema import NotifyEntry
from scheduler.definitions.operating import NotifyTarget
from scheduler.definitions.pipeline import Pipeline
from scheduler.definitions.schedules import ScheduleDef
from scheduler.services.notify import SendFailed, describe_target, retry_delay, send
from scheduler.store import Store
from scheduler.store.outbox import (
    Notification,
    NotifyRoutes,
    event_text,
    new_event,
    target_from_json,
    target_json,
    target_key,
)
from scheduler.store.patience import patiently

log = structlog.get_logger("scheduler.daemon.alerts")

POLL_SECONDS = 1.0
MAX_SENDS = 4  # sends at once; more wait their turn
PRUNE_SECONDS = 3600.0
SPOOL_FILE = "notify-spool.jsonl"


def notify_routes(
    config: Config,
    schedules: Mapping[str, ScheduleDef],
    pipelines: Mapping[str, Pipeline | None],
    run_url: str | None = None,
) -> NotifyRoutes:
    """Who hears of what, from the config and the served schedules and pipelines (each a
    ``ScheduleDef`` / ``Pipeline`` with its ``notify`` entries)."""
    return NotifyRoutes(
        targets=config.notify,
        schedules={
            name: _targets(schedule.notify)
            for name, schedule in schedules.items()
            if schedule.notify
        },
        pipelines={
            name: _targets(pipeline.notify)
            for name, pipeline in pipelines.items()
            if pipeline is not None and pipeline.notify
        },
        schedule_pipelines={name: schedule.pipeline for name, schedule in schedules.items()},
        run_url=run_url,
    )


def configured_targets(
    config: Config, schedules: Mapping[str, ScheduleDef], pipelines: Mapping[str, Pipeline | None]
) -> list[NotifyTarget]:
    """Every target configured anywhere, each once (``pipesched notify test``)."""
    routes = notify_routes(config, schedules, pipelines)
    every = (*routes.targets, *(t for ts in routes.schedules.values() for t in ts),
             *(t for ts in routes.pipelines.values() for t in ts))  # fmt: skip
    return list({target_key(t): t for t in every}.values())


def _targets(entries: Sequence[NotifyEntry]) -> tuple[NotifyTarget, ...]:
    return tuple(target_from_json(entry.model_dump()) for entry in entries)


class Spool:
    """``store_unwritable`` events kept in a private file while the store cannot take them:
    one JSON line per event (with its targets), one per target that took it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def add(self, event: Mapping[str, Any], targets: list[NotifyTarget]) -> None:
        self._append({"event": dict(event), "targets": [target_json(t) for t in targets]})

    def delivered(self, event_id: str, key: str) -> None:
        self._append({"delivered": event_id, "target_key": key})

    def _append(self, line: Mapping[str, Any]) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as file:
            file.write(json.dumps(line) + "\n")
            file.flush()
            os.fsync(file.fileno())

    def read(self) -> list[tuple[dict[str, Any], list[NotifyTarget], set[str]]]:
        """Each spooled event, its targets, and the keys of those that took it."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        events: dict[str, tuple[dict[str, Any], list[NotifyTarget], set[str]]] = {}
        for line in text.splitlines():
            try:
                item = json.loads(line)
            except ValueError:  # a line cut by a crash: nothing it said was relied on
                continue
            if "event" in item:
                targets = [target_from_json(t) for t in item["targets"]]
                events[item["event"]["id"]] = (item["event"], targets, set())
            elif item.get("delivered") in events:
                events[item["delivered"]][2].add(item["target_key"])
        return list(events.values())

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class Alerts:
    """Sends the outbox and the store's own alerts; ``run()`` is the daemon's task."""

    def __init__(self, store: Store, clock: Clock, config: Config) -> None:
        self.store, self.clock = store, clock
        self.base = config.file.parent  # relative ${{file:...}} secrets
        self.spool = Spool(config.state_dir / SPOOL_FILE)
        self.routes = NotifyRoutes()
        self._sends = asyncio.Semaphore(MAX_SENDS)
        self._in_flight: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._direct: list[asyncio.Task[None]] = []
        self._unwritable_since: float | None = None
        self._store_back = asyncio.Event()  # ends the direct sends' waits between tries
        # Events the spool could not take (its disk full too), with the targets that took them.
        self._unspooled: list[tuple[dict[str, Any], list[NotifyTarget], set[str]]] = []

    def route(self, routes: NotifyRoutes) -> None:
        """Who hears of what from now on (at start, on reload, once the API's URL is known)."""
        self.routes = routes
        self.store.route_notifications(routes)

    async def run(self) -> None:
        last_prune = self.clock.monotonic()
        try:
            while True:
                if self.store.health.unwritable is None:
                    try:
                        await self._take_spool()
                        await self._send_due()
                        if self.clock.monotonic() - last_prune >= PRUNE_SECONDS:
                            last_prune = self.clock.monotonic()
                            await run_blocking(self.store.prune_notifications)
                    except Exception as exc:  # the store's or the disk's trouble: next round
                        log.warning("notify_outbox_unavailable", error=str(exc))
                await asyncio.sleep(POLL_SECONDS)
        finally:
            for task in [*self._tasks, *self._direct]:
                task.cancel()

    async def _send_due(self) -> None:
        free = MAX_SENDS * 2 - len(self._in_flight)
        if free <= 0:
            return
        due = await run_blocking(
            self.store.due_notifications, free, exclude=sorted(self._in_flight)
        )
        for notification in due:
            self._in_flight.add(notification.id)
            self._background(self._deliver(notification))

    async def _deliver(self, notification: Notification) -> None:
        try:
            error = await self._attempt(notification.target, notification.payload)
            attempts = notification.attempts + 1
            retry_after = None
            if error is not None and attempts <= notification.target.retries:
                retry_after = retry_delay(attempts)
            self._log_outcome(notification, attempts, error, retry_after)
            await patiently(
                self.store.notification_sent,
                notification.id,
                error=error,
                retry_after=retry_after,
            )
        finally:
            self._in_flight.discard(notification.id)

    async def _attempt(self, target: NotifyTarget, payload: str) -> str | None:
        async with self._sends:
            try:
                await send(target, payload, base=self.base)
            except SendFailed as exc:
                return str(exc)
            except Exception as exc:  # a bug of ours must not stop the other alerts
                return f"{type(exc).__name__}: {exc}"
        return None

    @staticmethod
    def _log_outcome(
        notification: Notification, attempts: int, error: str | None, retry_after: float | None
    ) -> None:
        fields = {
            "alert": notification.event,
            "event_id": notification.event_id,
            "target": describe_target(notification.target),
            "attempts": attempts,
        }
        if error is None:
            log.info("notify_delivered", **fields)
        elif retry_after is not None:
            log.warning("notify_retry", error=error, retry_in=retry_after, **fields)
        else:
            log.error("notify_failed", error=error, **fields)

    # ---- the store's own alerts -------------------------------------------------------------

    def store_unwritable(self, reason: str) -> None:
        """The store has just become unwritable: spool the alert, and send it now."""
        self._unwritable_since = self.clock.monotonic()
        self._store_back.clear()
        self._background(self._unwritable(reason))

    def store_writable(self, was: str | None) -> None:
        """The store can be written again: the ``recovered`` alert joins the outbox."""
        self._background(self._writable(was))

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _unwritable(self, reason: str) -> None:
        targets = self.routes.targets_for("store_unwritable", None)
        if not targets:
            return
        event = new_event(
            "store_unwritable",
            self.clock.now(),
            message=f"pipesched cannot write its store: {reason}",
            status="unwritable",
            reason=reason,
        )
        try:
            await run_parallel(self.spool.add, event, targets)
        except OSError as exc:  # the disk may be what is full: memory alone will do
            log.warning("notify_spool_failed", error=str(exc))
            self._unspooled.append((event, targets, set()))
        for target in targets:
            task = asyncio.ensure_future(self._send_directly(event, target))
            self._direct.append(task)

    async def _send_directly(self, event: Mapping[str, Any], target: NotifyTarget) -> None:
        """Send while the outage lasts, with the usual backoff; once the store is back, the
        outbox takes over what is still unsent."""
        payload = event_text(event)
        attempts = 0
        while not self._store_back.is_set():
            error = await self._attempt(target, payload)
            attempts += 1
            if error is None:
                log.info("notify_delivered", alert=event["event"], event_id=event["id"],
                         target=describe_target(target), attempts=attempts)  # fmt: skip
                for kept, _, took in self._unspooled:
                    if kept["id"] == event["id"]:
                        took.add(target_key(target))
                with contextlib.suppress(OSError):
                    await run_parallel(self.spool.delivered, str(event["id"]), target_key(target))
                return
            if attempts > target.retries:
                return  # left pending in the spool: the outbox gives it its own tries
            log.warning("notify_retry", alert=event["event"], event_id=event["id"],
                        target=describe_target(target), error=error)  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._store_back.wait(), retry_delay(attempts))

    async def _writable(self, was: str | None) -> None:
        seconds = (
            None
            if self._unwritable_since is None
            else self.clock.monotonic() - self._unwritable_since
        )
        self._unwritable_since = None
        targets = self.routes.targets_for("recovered", None)
        await self._take_spool()
        if not targets:
            return
        lasted = f" after {seconds:.0f} s" if seconds is not None else ""
        event = new_event(
            "recovered",
            self.clock.now(),
            message=f"pipesched can write its store again{lasted} (it could not: {was})",
            status="writable",
            reason=was,
        )
        await patiently(self.store.add_notification, event, targets)

    async def _take_spool(self) -> None:
        """Move spooled events into the outbox, once the direct sends have stopped."""
        self._store_back.set()
        if not self._unspooled and not await run_parallel(self.spool.path.exists):
            return
        direct, self._direct = self._direct, []
        await asyncio.gather(*direct, return_exceptions=True)
        spooled = await run_parallel(self.spool.read)  # with what the direct sends added
        spooled += self._unspooled
        for event, targets, delivered in spooled:
            sent = [t for t in targets if target_key(t) in delivered]
            unsent = [t for t in targets if target_key(t) not in delivered]
            if unsent:
                await patiently(self.store.add_notification, event, unsent)
            if sent:
                await patiently(self.store.add_delivered, event, sent)
        self._unspooled = [item for item in self._unspooled if item not in spooled]
        await run_parallel(self.spool.clear)
