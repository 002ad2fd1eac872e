"""The control paths of the daemon's API: health, cancel, and schedule enable/disable/trigger.

The handlers are thin: they hand each request to the daemon through the ``DaemonControl``
protocol (the daemon owns all state in its event loop) and read fire records straight from the
store. User errors become JSON ``{"detail": message}``: NotFound → 404, any other
PipeschedError → 409, so the CLI can print the daemon's words as its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Protocol

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse

from scheduler.errors import NotFound, PipeschedError

if TYPE_CHECKING:
    from scheduler.store import Store

API_PREFIX = "/api/v1"


class DaemonControl(Protocol):
    """What the daemon offers its API; every coroutine runs in the daemon's event loop."""

    def health(
        self,
    ) -> (
        dict
    ): ...  # {"status": "ok", "pid":..., "schedules": n, "runs_in_flight": n, "started_at": iso}
    async def cancel_run(
        self, run_id: str
    ) -> dict: ...  # the run's `runs --json` object after cancel; raises NotFound
    async def set_schedule_enabled(
        self, name: str, enabled: bool
    ) -> dict: ...  # {"name", "enabled", "override"}; NotFound
    async def trigger_schedule(
        self, name: str
    ) -> dict: ...  # {"run_id": ... or None, "outcome": ..., "reason": ...}; NotFound


def create_control_app(control: DaemonControl, store: Store) -> FastAPI:
    """The FastAPI app of the control paths, bound to one daemon and its store."""
    app = FastAPI(title="pipesched", summary="pipesched daemon API", docs_url=None, redoc_url=None)

    @app.exception_handler(PipeschedError)
    async def _user_error(request: Request, exc: PipeschedError) -> JSONResponse:
        status = 404 if isinstance(exc, NotFound) else 409
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.get("/healthz")
    async def healthz() -> dict:
        return control.health()

    @app.post(API_PREFIX + "/runs/{run_id}/cancel")
    async def cancel_run(run_id: str) -> dict:
        return await control.cancel_run(run_id)

    @app.post(API_PREFIX + "/schedules/{name}/enable")
    async def enable_schedule(name: str) -> dict:
        return await control.set_schedule_enabled(name, True)

    @app.post(API_PREFIX + "/schedules/{name}/disable")
    async def disable_schedule(name: str) -> dict:
        return await control.set_schedule_enabled(name, False)

    @app.post(API_PREFIX + "/schedules/{name}/trigger")
    async def trigger_schedule(name: str) -> dict:
        return await control.trigger_schedule(name)

    # A plain def: FastAPI runs it in its thread pool, so a slow database never stalls the loop.
    @app.get(API_PREFIX + "/schedules/{name}/fires")
    def list_fires(name: str, limit: Annotated[int, Query(ge=0)] = 20) -> list[dict]:
        if name not in store.schedule_states():
            raise NotFound(f"no schedule {name!r}")
        return [fire.to_json() for fire in store.list_fires(name, limit=limit)]

    return app
