"""``Schedule.backfill``: Azure ML has no backfill, so the method is ours. The daemon runs a
backfill (it carries on after a restart); the handle reads its progress and waits for its end.
An embedded workspace asks the daemon of its config on its socket, a remote one the daemon at
its URL.
"""

from __future__ import annotations

import time
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

from scheduler.services.client import ServiceClient
from scheduler.services.daemon_http import DaemonClient, DaemonNotRunning, RemoteClient

API = "/api/v1"
POLL_SECONDS = 0.5


def daemon_api(backend: Any) -> DaemonClient | RemoteClient:
    """The daemon a workspace's backend reaches: DaemonNotRunning without one."""
    client = getattr(backend, "client", None)
    if isinstance(client, RemoteClient):
        return client
    if isinstance(client, ServiceClient):
        daemon = client.daemon()
        if daemon is not None:
            return daemon
    raise DaemonNotRunning("a backfill runs in the daemon, which is not running")


def bound_text(value: date | datetime | str) -> str:
    """A range bound as the API takes it: a date stays a whole day, a time keeps its offset."""
    return value if isinstance(value, str) else value.isoformat()


class Backfill:
    """A backfill the daemon runs: ``id``, ``status`` (running, completed, failed, canceled),
    ``done`` of ``total`` times; ``wait()`` until it ends, ``cancel()``."""

    def __init__(self, api: DaemonClient | RemoteClient, data: dict[str, Any]) -> None:
        self._api, self._data = api, data

    @property
    def id(self) -> str:
        return str(self._data["id"])

    @property
    def status(self) -> str:
        return str(self._data["status"])

    @property
    def done(self) -> int:
        return int(self._data["done"])

    @property
    def total(self) -> int:
        return int(self._data["total"])

    @property
    def counts(self) -> dict[str, int]:
        """How many times are in each outcome (pending, started, skipped, completed...)."""
        return dict(self._data["counts"])

    def refresh(self) -> Backfill:
        self._data = self._api.get(f"{API}/backfills/{quote(self.id, safe='')}")
        return self

    def wait(self, timeout: float | None = None) -> Backfill:
        """Until the backfill has ended (TimeoutError after ``timeout`` seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.refresh().status == "running":
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"backfill {self.id} still running after {timeout}s")
            time.sleep(POLL_SECONDS)
        return self

    def cancel(self) -> Backfill:
        self._data = self._api.post(f"{API}/backfills/{quote(self.id, safe='')}/cancel")
        return self

    def __repr__(self) -> str:
        return f"Backfill(Id: {self.id}, Status: {self.status}, Done: {self.done}/{self.total})"


def start_backfill(
    backend: Any,
    schedule: str,
    start: date | datetime | str,
    end: date | datetime | str,
    *,
    max_concurrent: int,
    rerun: bool,
) -> Backfill:
    api = daemon_api(backend)
    body = {
        "from": bound_text(start),
        "to": bound_text(end),
        "max_concurrent": max_concurrent,
        "rerun": rerun,
        "requested_by": "sdk",
    }
    return Backfill(api, api.post(f"{API}/schedules/{quote(schedule, safe='')}/backfills", body))
