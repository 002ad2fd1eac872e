"""What a standby daemon answers on its API while another daemon leads: every read (the
store is shared), and for every change a 503 that names the leader and its address."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

from scheduler.core.clock import Clock, iso
from scheduler.core.loopguard import run_blocking
from scheduler.services.control import NotLeader
from scheduler.services.schedules import get_schedule
from scheduler.store.records import Leadership

if TYPE_CHECKING:
    from scheduler.definitions import Pipeline
    from scheduler.definitions.config import Config
    from scheduler.store import Store
    from scheduler.store.records import RunRecord


class StandbyControls:
    """The ``DaemonControl`` of a standby: health says who leads; changes are refused."""

    def __init__(
        self,
        started_at: datetime,
        leadership: Callable[[], Leadership],
        config: Config,
        store: Store,
        clock: Clock,
    ) -> None:
        self._started_at = started_at
        self._leadership = leadership  # the last one seen: read without a store call
        self._config, self._store, self._clock = config, store, clock

    def health(self) -> dict:
        leader = self._leadership()
        return {
            "status": "ok",
            "role": "standby",
            "leader": _leader_fields(leader),
            "epoch": leader.epoch,
            "pid": os.getpid(),
            "started_at": iso(self._started_at),
            "schedules": 0,
            "runs_in_flight": 0,
            "last_reload": None,
        }

    def _refuse(self) -> NoReturn:
        leader = self._leadership()
        where = f" at {leader.api_url}" if leader.api_url else ""
        raise NotLeader(
            f"this daemon is a standby; the leader is {leader.host}:{leader.pid}{where}",
            hint="send changes to the leader; this daemon takes over if the leader goes",
        )

    async def reload(self) -> dict:
        self._refuse()

    async def cancel_run(self, run_id: str) -> dict:
        self._refuse()

    async def set_schedule_enabled(self, name: str, enabled: bool) -> dict:
        self._refuse()

    async def trigger_schedule(self, name: str) -> dict:
        self._refuse()

    async def submit_pipeline_run(
        self,
        pipeline: str,
        version: str | None,
        parameters: dict,
        experiment: str | None,
        continue_on_step_failure: bool | None,
        regenerate_outputs: bool = False,
    ) -> RunRecord:
        self._refuse()

    async def submit_definition_run(
        self,
        definition: Pipeline,
        version: str | None,
        parameters: dict,
        experiment: str | None,
        continue_on_step_failure: bool | None,
        regenerate_outputs: bool = False,
    ) -> RunRecord:
        self._refuse()

    async def create_schedule(self, definition: dict) -> dict:
        self._refuse()

    async def get_schedule(self, name: str) -> dict:
        """A read: served here as the leader serves it."""
        summary = await run_blocking(
            get_schedule, self._config, self._store, name, self._clock.now()
        )
        return summary.to_json()

    async def delete_schedule(self, name: str) -> None:
        self._refuse()

    async def update_schedule(self, name: str, definition: dict) -> dict:
        self._refuse()


def _leader_fields(leader: Leadership) -> dict[str, Any] | None:
    if leader.holder is None:
        return None
    return {
        "name": leader.holder,
        "host": leader.host,
        "pid": leader.pid,
        "since": iso(leader.since),
        "api_url": leader.api_url,
        "lease_until": iso(leader.lease_until),
    }
