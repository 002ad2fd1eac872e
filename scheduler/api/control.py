"""The control paths of the daemon's API: health, cancel, and schedule enable/disable/trigger.

The handlers are thin: they hand each request to the daemon through the ``DaemonControl``
protocol (the daemon owns all state in its event loop) and read fire records straight from the
store. User errors become JSON ``{"detail": message}``: NotFound → 404, a bad parameter → 422
naming the field, any other PipeschedError → 409, so the CLI can print the daemon's words as its
own. ``scheduler.api.app`` combines these routes with the REST API of issue 6.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Protocol

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse

from scheduler.errors import NotFound, ParameterError, PipeschedError

if TYPE_CHECKING:
    from scheduler.records import RunRecord
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
    async def submit_pipeline_run(
        self,
        pipeline: str,
        version: str | None,
        parameters: dict,
        experiment: str | None,
        continue_on_step_failure: bool | None,
    ) -> RunRecord: ...  # trigger "api"; raises ParameterError (→ 422), NotFound (→ 404)
    async def submit_definition_run(
        self,
        definition: Any,
        version: str | None,
        parameters: dict,
        experiment: str | None,
        continue_on_step_failure: bool | None,
    ) -> RunRecord: ...  # a loaded Pipeline (e.g. an uploaded snapshot); as above


def install_error_handlers(app: FastAPI) -> None:
    """Our user errors as JSON answers; anything else stays a 500 (a bug of ours)."""

    @app.exception_handler(PipeschedError)
    async def _user_error(request: Request, exc: PipeschedError) -> JSONResponse:
        if isinstance(exc, ParameterError):
            return JSONResponse({"detail": [parameter_problem(exc)]}, status_code=422)
        status = 404 if isinstance(exc, NotFound) else 409
        return JSONResponse({"detail": str(exc)}, status_code=status)


def parameter_problem(exc: ParameterError, where: tuple[str, ...] = ("body",)) -> dict[str, Any]:
    """A bad run parameter in FastAPI's own 422 shape, so every client reads one shape."""
    return {"loc": [*where, exc.name], "msg": str(exc), "type": "parameter_error"}


def health_route(app: FastAPI, control: DaemonControl) -> None:
    """``GET /healthz``: never behind a token (DESIGN)."""

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict:
        return control.health()


def control_router(control: DaemonControl, store: Store) -> APIRouter:
    """The control paths under ``/api/v1``: cancel and schedule enable/disable/trigger/fires."""
    router = APIRouter(prefix=API_PREFIX)

    @router.post("/runs/{run_id}/cancel", tags=["runs"])
    async def cancel_run(run_id: str) -> dict:
        return await control.cancel_run(run_id)

    @router.post("/schedules/{name}/enable", tags=["schedules"])
    async def enable_schedule(name: str) -> dict:
        return await control.set_schedule_enabled(name, True)

    @router.post("/schedules/{name}/disable", tags=["schedules"])
    async def disable_schedule(name: str) -> dict:
        return await control.set_schedule_enabled(name, False)

    @router.post("/schedules/{name}/trigger", tags=["schedules"])
    async def trigger_schedule(name: str) -> dict:
        return await control.trigger_schedule(name)

    # A plain def: FastAPI runs it in its thread pool, so a slow database never stalls the loop.
    @router.get("/schedules/{name}/fires", tags=["schedules"])
    def list_fires(name: str, limit: Annotated[int, Query(ge=0, le=10_000)] = 20) -> list[dict]:
        if name not in store.schedule_states():
            raise NotFound(f"no schedule {name!r}")
        return [fire.to_json() for fire in store.list_fires(name, limit=limit)]

    return router


def create_control_app(control: DaemonControl, store: Store) -> FastAPI:
    """The control paths alone, without tokens (the unix socket before issue 6's full app)."""
    app = FastAPI(title="pipesched", summary="pipesched daemon API", docs_url=None, redoc_url=None)
    install_error_handlers(app)
    health_route(app, control)
    app.include_router(control_router(control, store))
    return app
