"""The control paths of the daemon's API: health, cancel, schedule enable/disable/trigger, and
schedules created or deleted through the API (``source: api``).

The handlers are thin: they hand each request to the daemon through the ``DaemonControl``
protocol (the daemon owns all state in its event loop) and read fire records from the store
through the services. User errors become JSON ``{"detail": message}``: NotFound → 404, a bad
parameter or schedule definition → 422 naming the field, any other PipeschedError → 409, so the
CLI can print the daemon's words as its own. ``scheduler.api.app`` combines these routes with the REST API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse

from scheduler.api.limits import MAX_NAME, MAX_TEXT
from scheduler.core.errors import NotFound, ParameterError, PipeschedError
from scheduler.services import schedules as schedule_service
from scheduler.services.api_schedules import InvalidSchedule
from scheduler.services.control import DaemonControl, NotLeader

if TYPE_CHECKING:
    from scheduler.store import Store

__all__ = ["API_PREFIX", "DaemonControl", "control_router", "health_route"]

API_PREFIX = "/api/v1"


def install_error_handlers(app: FastAPI) -> None:
    """Our user errors as JSON answers; anything else stays a 500 (a bug of ours)."""

    @app.exception_handler(PipeschedError)
    async def _user_error(request: Request, exc: PipeschedError) -> JSONResponse:
        if isinstance(exc, ParameterError):
            return JSONResponse({"detail": [parameter_problem(exc)]}, status_code=422)
        if isinstance(exc, InvalidSchedule):
            return JSONResponse({"detail": definition_problems(exc)}, status_code=422)
        if isinstance(exc, NotLeader):
            return JSONResponse({"detail": str(exc)}, status_code=503)
        status = 404 if isinstance(exc, NotFound) else 409
        return JSONResponse({"detail": str(exc)}, status_code=status)


def parameter_problem(exc: ParameterError, where: tuple[str, ...] = ("body",)) -> dict[str, Any]:
    """A bad run parameter in FastAPI's own 422 shape, so every client reads one shape."""
    return {"loc": [*where, exc.name], "msg": str(exc), "type": "parameter_error"}


def definition_problems(exc: InvalidSchedule) -> list[dict[str, Any]]:
    """A bad schedule definition in FastAPI's 422 shape: ``loc`` is the field in the body."""
    return [
        {"loc": ["body", *error.loc], "msg": str(error), "type": "definition_error"}
        for error in exc.errors
    ]


def health_route(app: FastAPI, control: DaemonControl) -> None:
    """``GET /healthz``: never behind a token. 200 with ``"status": "ok"``; 503 with the
    status and its ``reason`` while the daemon cannot do its work (its store cannot be
    written)."""

    @app.get("/healthz", tags=["health"], response_model=None)
    async def healthz() -> dict | JSONResponse:
        answer = control.health()
        if answer.get("status") != "ok":
            return JSONResponse(answer, status_code=503)
        return answer


def control_router(control: DaemonControl, store: Store) -> APIRouter:
    """The control paths under ``/api/v1``: reload, cancel, schedule enable/disable/trigger/fires, and
    creating, reading and deleting one schedule."""
    router = APIRouter(prefix=API_PREFIX)

    @router.post("/reload", tags=["daemon"])
    async def reload() -> dict:
        """Reload config, schedules and pipelines, as SIGHUP does: ``reloaded`` false with the
        ``errors`` when a definition is broken (the daemon keeps serving the previous ones)."""
        return await control.reload()

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
        fires = schedule_service.list_fires(store, name, limit=limit)  # 404 naming those there are
        return [fire.to_json() for fire in fires]

    schedule_routes(router, control)
    return router


def schedule_routes(router: APIRouter, control: DaemonControl) -> None:
    """``POST /schedules``, ``GET`` and ``DELETE /schedules/{name}``: schedules kept in the
    store beside those of schedules.yaml; the daemon serves a new one at once."""

    @router.post("/schedules", status_code=201, tags=["schedules"], openapi_extra=_SCHEDULE_BODY)
    async def create_schedule(
        definition: Annotated[
            dict[str, Any],
            Body(description="a schedules.yaml entry as JSON", examples=[_EXAMPLE]),
        ],
    ) -> dict:
        """Create a schedule (``source: api``): 409 when the name is taken, 422 naming the
        field that is not valid. The answer is its ``schedules --json`` object."""
        check_lengths(definition)
        return await control.create_schedule(definition)

    @router.get("/schedules/{name}", tags=["schedules"])
    async def get_schedule(name: str) -> dict:
        """One schedule's ``schedules --json`` object, whichever its source."""
        return await control.get_schedule(name)

    @router.put("/schedules/{name}", tags=["schedules"], openapi_extra=_SCHEDULE_BODY)
    async def update_schedule(
        name: str,
        definition: Annotated[
            dict[str, Any],
            Body(description="the schedule's whole new schedules.yaml entry", examples=[_EXAMPLE]),
        ],
    ) -> dict:
        """Replace a schedule created through the API (Azure's ``Schedule.update``; a new
        ``name`` renames it). It keeps its ``id``, first registration, override and fire
        history; 409 for one of schedules.yaml or a name taken, 422 naming a bad field."""
        check_lengths(definition)
        return await control.update_schedule(name, definition)

    @router.delete("/schedules/{name}", status_code=204, tags=["schedules"])
    async def delete_schedule(name: str) -> Response:
        """Delete a schedule created through the API (its fire records stay); one of
        schedules.yaml is refused with 409."""
        await control.delete_schedule(name)
        return Response(status_code=204)


def check_lengths(definition: dict[str, Any]) -> None:
    """A 422 naming the first name or text field of a schedule that is not a string, is empty
    or is too long (the document's schema of the body says the same)."""
    for key, most in (("name", MAX_NAME), ("pipeline", MAX_NAME), ("description", MAX_TEXT)):
        if key not in definition:
            continue  # the schedule's own validation names what is missing
        value = definition[key]
        if not isinstance(value, str):
            msg = f"{key} must be a string, not {type(value).__name__}"
        elif not value and key != "description":
            msg = f"{key} must not be empty"
        elif len(value) > most:
            msg = f"{key} has {len(value)} characters; at most {most}"
        else:
            continue
        raise HTTPException(422, detail=[{"loc": ["body", key], "msg": msg, "type": "value_error"}])


# The document's schema of a schedule: what every schedule has (the rest as in schedules.yaml).
_SCHEDULE_BODY = {
    "requestBody": {
        "content": {
            "application/json": {
                "schema": {
                    "required": ["name", "pipeline"],
                    "properties": {
                        "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME},
                        "pipeline": {"type": "string", "minLength": 1, "maxLength": MAX_NAME},
                        "description": {"type": "string", "maxLength": MAX_TEXT},
                    },
                }
            }
        }
    }
}

_EXAMPLE = {
    "name": "weekly-training",
    "pipeline": "diabetes-training",
    "recurrence": {"frequency": "Week", "interval": 1, "week_days": ["Monday"]},
}


def create_control_app(control: DaemonControl, store: Store) -> FastAPI:
    """The control paths alone, without tokens (for tests and tools that need no REST API)."""
    app = FastAPI(title="pipesched", summary="pipesched daemon API", docs_url=None, redoc_url=None)
    install_error_handlers(app)
    health_route(app, control)
    app.include_router(control_router(control, store))
    return app
