"""What the daemon offers the front ends it serves (the REST API and the web view): one protocol,
so both hand a request to the daemon the same way, and neither imports the other."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from scheduler.core.errors import PipeschedError

if TYPE_CHECKING:
    from scheduler.definitions import Pipeline
    from scheduler.store.records import RunRecord


class NotLeader(PipeschedError):
    """This daemon is a standby: a change goes to the leader (the API answers 503 naming it)."""


class DaemonControl(Protocol):
    """What the daemon offers its API; every coroutine runs in the daemon's event loop."""

    def health(
        self,
    ) -> (
        dict
    ): ...  # {"status": "ok" | "store_unwritable", "reason"?, "pid":..., "schedules": n, ...}
    async def reload(
        self,
    ) -> dict: ...  # {"reloaded": bool, "errors": [...], "schedules": n}; as SIGHUP does
    async def cancel_run(
        self, run_id: str
    ) -> dict: ...  # the run's `runs --json` object after cancel; raises NotFound
    async def set_schedule_enabled(
        self, name: str, enabled: bool
    ) -> dict: ...  # {"name", "enabled", "override"}; NotFound
    async def trigger_schedule(
        self, name: str
    ) -> dict: ...  # {"run_id": ... or None, "outcome": ..., "reason": ...}; NotFound
    async def submit_pipeline_run(
        self,
        pipeline: str,
        version: str | None,
        parameters: dict,
        experiment: str | None,
        continue_on_step_failure: bool | None,
        regenerate_outputs: bool = False,
    ) -> RunRecord: ...  # trigger "api"; raises ParameterError (→ 422), NotFound (→ 404)
    async def submit_definition_run(
        self,
        definition: Pipeline,
        version: str | None,
        parameters: dict,
        experiment: str | None,
        continue_on_step_failure: bool | None,
        regenerate_outputs: bool = False,
    ) -> RunRecord: ...  # a loaded Pipeline (e.g. an uploaded snapshot); as above
    async def create_schedule(
        self, definition: dict
    ) -> dict: ...  # the new schedule's `schedules --json` object; InvalidSchedule, ScheduleExists
    async def get_schedule(
        self, name: str
    ) -> dict: ...  # one `schedules --json` object, file or API; NotFound
    async def delete_schedule(
        self, name: str
    ) -> None: ...  # NotFound; a schedule of schedules.yaml is refused (→ 409)
    async def update_schedule(
        self, name: str, definition: dict
    ) -> dict: ...  # the changed schedule's object; as create, plus NotFound
