"""The one place that decides whether to ask a running daemon or to act on the store.

``ServiceClient`` holds the rule every front end on this machine follows: when the daemon of the
config answers on its socket, changes go through it (so it acts on them at once); otherwise they
are made on the store, where the next daemon start finds them — or refused when only a daemon can
do them (firing a schedule). The daemon is reached through ``services.daemon_http``.

Standard library only at import time, so a command that asks the daemon starts fast; the
store-side services are imported only when no daemon answers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scheduler.services.daemon_http import (
    API,
    DaemonClient,
    DaemonNotRunning,
    RemoteClient,
    run_path,
    schedule_path,
    socket_path,
)

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from scheduler.definitions.config import Config
    from scheduler.store import Store


# -- the daemon, or the store ---------------------------------------------------------------------


def local_daemon(state_dir: Path) -> DaemonClient | None:
    """The daemon of ``state_dir`` when it answers on its socket, else None."""
    client = DaemonClient(socket_path(state_dir))
    return client if client.available() else None


@dataclass(frozen=True)
class Canceled:
    """A run after a cancel: its ``runs --json`` object, and whether the daemon did it."""

    run: dict[str, Any]
    by_daemon: bool

    @property
    def run_id(self) -> str:
        return str(self.run["id"])


@dataclass(frozen=True)
class Toggled:
    """A schedule enabled or disabled; ``by_daemon`` False: written to the store, for the next
    daemon start."""

    name: str
    enabled: bool
    by_daemon: bool


@dataclass(frozen=True)
class Fired:
    """What firing a schedule now became: the run it started or queued, or why none."""

    name: str
    run_id: str | None
    outcome: str
    reason: str | None


class ServiceClient:
    """The changes a user makes on this machine (cancel a run, enable, disable, fire, create or
    delete a schedule): through the daemon of ``config`` when it answers on its socket, else on
    the store ``open_store()`` opens (only then)."""

    def __init__(
        self, config: Config, open_store: Callable[[], AbstractContextManager[Store]]
    ) -> None:
        self.config = config
        self.open_store = open_store
        self._daemon: DaemonClient | None = None
        self._asked = False

    def daemon(self) -> DaemonClient | None:
        """The daemon of this config when it answers (asked once per client)."""
        if not self._asked:
            self._daemon, self._asked = local_daemon(self.config.state_dir), True
        return self._daemon

    def cancel(self, run_ref: str, *, pipeline: str | None = None) -> Canceled:
        """Cancel a run (any unique prefix, or ``latest`` — of ``pipeline`` when given): the daemon when it answers and owns
        the run (or the run has no owner yet), else its owner process, or closed here when that
        owner is dead. RunAlreadyFinished when it had finished first."""
        # lazy: the store-side services load SQLAlchemy, which a daemon's answer never needs
        from scheduler.services.cancel import RunAlreadyFinished, cancel_without_daemon
        from scheduler.services.runs import resolve_run
        from scheduler.store.records import FINISHED_RUN_STATUSES

        with self.open_store() as store:
            run = store.get_run(resolve_run(store, run_ref, pipeline=pipeline))
            if run.status in FINISHED_RUN_STATUSES:
                raise RunAlreadyFinished(f"run {run.id} has already finished: {run.status}")
            daemon = self.daemon()
            if daemon is not None:
                daemon_pid = daemon.health().get("pid")
                if run.owner is None or run.owner.pid == daemon_pid:
                    record = daemon.post(run_path(run.id, "cancel"))
                    status = record.get("status") if isinstance(record, dict) else None
                    if status in ("completed", "failed"):
                        raise RunAlreadyFinished(
                            f"run {run.id} finished {status} before it was canceled"
                        )
                    return Canceled(record, by_daemon=True)
            cancel_without_daemon(store, run.id)
            return Canceled(store.get_run(run.id).to_json(), by_daemon=False)

    def reload(self) -> dict[str, Any]:
        """Ask the daemon to reload as SIGHUP does: ``{"reloaded", "errors", "schedules"}``.
        Only a daemon can: DaemonNotRunning without one."""
        daemon = self.daemon()
        if daemon is None:
            raise DaemonNotRunning()
        answer: dict[str, Any] = daemon.post(f"{API}/reload")
        return answer

    def set_schedule_enabled(self, name: str, enabled: bool) -> Toggled:
        """Enable or disable a schedule until the opposite command; without a daemon the
        override is written to the store (NotFound for a name no daemon would know)."""
        daemon = self.daemon()
        if daemon is not None:
            daemon.post(schedule_path(name, "enable" if enabled else "disable"))
            return Toggled(name, enabled, by_daemon=True)
        # lazy: only without a daemon does the store (SQLAlchemy) load
        from scheduler.services.schedules import set_override

        with self.open_store() as store:
            set_override(self.config, store, name, enabled)
        return Toggled(name, enabled, by_daemon=False)

    def trigger_schedule(self, name: str) -> Fired:
        """Fire a schedule now, under its concurrency rule: only a daemon can."""
        daemon = self.daemon()
        if daemon is None:
            raise DaemonNotRunning()
        answer = daemon.post(schedule_path(name, "trigger"))
        return Fired(name, answer.get("run_id"), str(answer.get("outcome")), answer.get("reason"))

    def create_schedule(self, definition: dict[str, Any]) -> dict[str, Any]:
        """Create an API schedule; its ``schedules --json`` object."""
        daemon = self.daemon()
        if daemon is not None:
            created: dict[str, Any] = daemon.post(f"{API}/schedules", definition)
            return created
        # lazy: only without a daemon does the store (SQLAlchemy) load
        from scheduler.services.schedules import create_schedule

        with self.open_store() as store:
            return create_schedule(self.config, store, definition).to_json()

    def update_schedule(self, name: str, definition: dict[str, Any]) -> dict[str, Any]:
        """Replace an API schedule's definition (a rename too); its ``schedules --json``
        object."""
        daemon = self.daemon()
        if daemon is not None:
            updated: dict[str, Any] = daemon.put(schedule_path(name), definition)
            return updated
        # lazy: only without a daemon does the store (SQLAlchemy) load
        from scheduler.services.schedules import update_schedule

        with self.open_store() as store:
            return update_schedule(self.config, store, name, definition).to_json()

    def delete_schedule(self, name: str) -> None:
        """Delete an API schedule (its fire records stay)."""
        daemon = self.daemon()
        if daemon is not None:
            daemon.delete(schedule_path(name))
            return
        # lazy: only without a daemon does the store (SQLAlchemy) load
        from scheduler.services.api_schedules import delete_api_schedule

        with self.open_store() as store:
            delete_api_schedule(self.config, store, name)


class RemoteServices:
    """The same changes asked of the daemon at a URL (``pipesched --url``): it resolves run ids
    and schedule names itself, and refuses what it would refuse on its own machine."""

    def __init__(self, client: RemoteClient) -> None:
        self.client = client

    def cancel(self, run_ref: str) -> Canceled:
        return Canceled(self.client.post(run_path(run_ref, "cancel")), by_daemon=True)

    def set_schedule_enabled(self, name: str, enabled: bool) -> Toggled:
        self.client.post(schedule_path(name, "enable" if enabled else "disable"))
        return Toggled(name, enabled, by_daemon=True)

    def reload(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.client.post(f"{API}/reload")
        return answer

    def trigger_schedule(self, name: str) -> Fired:
        answer = self.client.post(schedule_path(name, "trigger"))
        return Fired(name, answer.get("run_id"), str(answer.get("outcome")), answer.get("reason"))
