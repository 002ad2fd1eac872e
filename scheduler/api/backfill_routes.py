"""Backfills over REST: ``POST /schedules/{name}/backfills`` makes one (or, with ``dry_run``,
answers the plan), ``GET /backfills[/{id}]`` reads them and ``POST /backfills/{id}/cancel``
cancels one. Making and canceling go through the daemon (it runs them); reads are the store's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol, runtime_checkable

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from scheduler.api.limits import MAX_NAME
from scheduler.services.backfill_plan import get_backfill
from scheduler.services.control import NotLeader

if TYPE_CHECKING:
    from scheduler.services.control import DaemonControl
    from scheduler.store import Store

MAX_BOUND = 64
BackfillStatus = Literal["running", "completed", "canceled", "failed"]


@runtime_checkable
class BackfillControl(Protocol):
    """What a daemon that runs backfills offers its API (a standby hands these to its leader)."""

    async def create_backfill(
        self,
        schedule: str,
        start: str,
        end: str,
        *,
        max_concurrent: int,
        rerun: bool,
        dry_run: bool,
        requested_by: str | None,
    ) -> dict[str, Any]: ...
    async def cancel_backfill(self, reference: str) -> dict[str, Any]: ...


class BackfillBody(BaseModel):
    """A backfill of the schedule over ``[from, to]``: dates (``2026-03-01``, whole days) or ISO
    times; without an offset, in the schedule's zone."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: str = Field(alias="from", min_length=1, max_length=MAX_BOUND)
    end: str = Field(alias="to", min_length=1, max_length=MAX_BOUND)
    max_concurrent: int = Field(default=1, ge=1, le=1000)
    rerun: StrictBool = False
    dry_run: StrictBool = False
    requested_by: str | None = Field(default=None, max_length=MAX_NAME)


def backfill_routes(router: APIRouter, control: DaemonControl, store: Store) -> None:
    """Add the backfill paths to the ``/api/v1`` router."""

    def runner() -> BackfillControl:
        if not isinstance(control, BackfillControl):
            raise NotLeader("only the leading daemon runs backfills")
        return control

    @router.post(
        "/schedules/{name}/backfills",
        status_code=201,
        tags=["backfills"],
        responses={200: {"description": "the plan of a dry run; nothing is written"}},
    )
    async def create_backfill(name: str, body: BackfillBody) -> Any:
        """Backfill a time schedule over a range: each of its nominal times in the range runs
        once, in order (trigger ``backfill:<id>``), at most ``max_concurrent`` at once; a time
        that already has a fire record is skipped unless ``rerun``. 201 with the backfill; with
        ``dry_run`` 200 with what would happen to each time. 404 for an unknown schedule, 409
        for a range it cannot backfill (none of its times, or too many)."""
        answer = await runner().create_backfill(
            name,
            body.start,
            body.end,
            max_concurrent=body.max_concurrent,
            rerun=body.rerun,
            dry_run=body.dry_run,
            requested_by=body.requested_by or "api",
        )
        if body.dry_run:
            return JSONResponse(answer, status_code=200)
        return answer

    @router.get("/backfills", tags=["backfills"])
    def list_backfills(
        status: Annotated[list[BackfillStatus] | None, Query()] = None,
        limit: Annotated[int, Query(ge=0, le=1000)] = 20,
    ) -> list[dict]:
        """Backfills, newest first, with their progress (``backfills --json`` objects)."""
        return [b.to_json() for b in store.list_backfills(statuses=status or (), limit=limit)]

    @router.get("/backfills/{backfill_id}", tags=["backfills"])
    def get_one(backfill_id: str) -> dict:
        """One backfill (any unique prefix of its id) and each of its times: outcome, reason,
        run."""
        backfill = get_backfill(store, backfill_id)
        times = store.backfill_times(backfill.id)
        return backfill.to_json() | {"times": [t.to_json() for t in times]}

    @router.post("/backfills/{backfill_id}/cancel", tags=["backfills"])
    async def cancel(backfill_id: str) -> dict:
        """Cancel a backfill: no new time starts, its queued and running runs are canceled;
        the answer comes once they have ended. One already ended is answered as it is."""
        return await runner().cancel_backfill(backfill_id)
