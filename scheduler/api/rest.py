"""The REST API (``/api/v1``): submit runs the way Azure ML clients do, read run
history, step logs, pipelines and schedules; and for the SDK's remote workspace, upload a saved
pipeline folder as a snapshot, run or publish it, publish a finished run's definition and move
an endpoint's default version (``sdk_routes``).

Handlers are thin. Submitting goes through the daemon (``DaemonControl.submit_pipeline_run``:
the dispatcher owns concurrency and the queue); reads go straight to the store. Reading handlers
are plain ``def``s: FastAPI runs them in its thread pool, so a slow database never stalls the
daemon's loop.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn

import structlog
from fastapi import APIRouter, Body, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from scheduler.api import logs
from scheduler.api.control import API_PREFIX, DaemonControl, parameter_problem
from scheduler.core.clock import SYSTEM_CLOCK, Clock
from scheduler.core.errors import NotFound, ParameterError
from scheduler.services import logfiles
from scheduler.services.schedule_summary import collect as collect_schedules
from scheduler.store.records import AZURE_STATUS_CODES

if TYPE_CHECKING:
    from scheduler.definitions.config import Config
    from scheduler.store import Store
    from scheduler.store.records import RunRecord

log = structlog.get_logger(__name__)

STATUS_CODES = AZURE_STATUS_CODES
MAX_PAGE = 1000
RunStatus = Literal["queued", "running", "completed", "failed", "canceled"]


class DataPath(BaseModel):
    """Azure ML's data path assignment: a file or folder in a datastore."""

    DataStoreName: str = Field(min_length=1)
    RelativePath: str


class SubmitBody(BaseModel):
    """Azure ML's published-pipeline request body; fields Azure sends that mean nothing here
    (``RunSource``, ``Description``...) are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")

    ExperimentName: str | None = Field(None, pattern=r"^\s*\S")
    ParameterAssignments: dict[str, Any] = Field(default_factory=dict)
    DataPathAssignments: dict[str, DataPath] = Field(default_factory=dict)
    ContinueRunOnStepFailure: bool | None = None
    # pipesched's own (the SDK's submit(regenerate_outputs=True)): run every step, reuse nothing.
    RegenerateOutputs: bool = False


class RunStatusCode(BaseModel):
    StatusCode: str


class SubmitAnswer(BaseModel):
    """The fields of Azure ML's run record that clients read, plus the run's own URL."""

    Id: str
    Status: RunStatusCode
    ExperimentName: str
    url: str


def rest_router(
    control: DaemonControl, store: Store, config: Config, clock: Clock = SYSTEM_CLOCK
) -> APIRouter:
    """The ``/api/v1`` paths for clients (the control paths are ``control.control_router``)."""
    router = APIRouter(prefix=API_PREFIX)

    async def submit(
        request: Request, name: str, version: str | None, body: SubmitBody
    ) -> SubmitAnswer:
        await asyncio.to_thread(check_pipeline_name, config, store, name)
        parameters = body_parameters(body)
        try:
            run = await control.submit_pipeline_run(
                name,
                version,
                parameters,
                body.ExperimentName,
                body.ContinueRunOnStepFailure,
                regenerate_outputs=body.RegenerateOutputs,
            )
        except ParameterError as exc:
            raise_parameter(exc, body)
        log.info("api_run_submitted", run_id=run.id, pipeline=name, version=version)
        return submit_answer(request, run)

    @router.post("/pipelines/{name}/runs", status_code=202, tags=["pipelines"])
    async def submit_default(
        request: Request, name: str, body: Annotated[SubmitBody | None, Body()] = None
    ) -> SubmitAnswer:
        """Run the endpoint's default version (the working copy when nothing is published)."""
        return await submit(request, name, None, body or SubmitBody())

    @router.post("/pipelines/{name}/versions/{version}/runs", status_code=202, tags=["pipelines"])
    async def submit_version(
        request: Request,
        name: str,
        version: str,
        body: Annotated[SubmitBody | None, Body()] = None,
    ) -> SubmitAnswer:
        """Run one published version."""
        return await submit(request, name, version, body or SubmitBody())

    @router.get("/runs", tags=["runs"])
    def list_runs(
        pipeline: str | None = None,
        status: Annotated[list[RunStatus] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
        before: Annotated[str | None, Query(description="a run id: runs older than it")] = None,
        experiment: str | None = None,
    ) -> list[dict]:
        """Run history, newest first (``runs --json`` objects); page with ``before``."""
        records = store.list_runs(
            pipeline=pipeline,
            statuses=status or (),
            limit=limit,
            before=before,
            experiment=experiment,
        )
        return [r.to_json() for r in records]

    @router.get("/runs/{run_id}", name="get_run", tags=["runs"])
    def get_run(run_id: str) -> dict:
        """One run with its steps, attempts, metrics and outputs (``show --json``); any unique
        prefix of its id."""
        return store.get_run_detail(store.resolve_run_id(run_id)).to_json()

    @router.get(
        "/runs/{run_id}/steps/{step}/logs",
        tags=["runs"],
        response_class=StreamingResponse,
        responses={200: {"content": {"text/plain": {}}}},
    )
    def step_logs(
        run_id: str,
        step: str,
        tail: Annotated[int | None, Query(ge=0, description="only the last N lines")] = None,
        attempt: Annotated[int | None, Query(ge=1)] = None,
        follow: bool = False,
    ) -> Response:
        """A step's combined stdout and stderr (the latest attempt by default); ``follow``
        streams it until the step ends."""
        run_id = store.resolve_run_id(run_id)
        detail = store.get_run_detail(run_id)
        name = logfiles.find_step(detail, step)
        current = logfiles.pick_attempt(detail, name, attempt)
        data, offset = logs.read_log(current, tail)
        if not follow:
            if not current.log_path:
                raise NotFound(f"step {name!r} of run {run_id} has no log yet")
            return Response(data, media_type="text/plain")
        stream = logs.follow_log(store, run_id, name, attempt, current, offset, data)
        return StreamingResponse(stream, media_type="text/plain")

    @router.get("/pipelines", tags=["pipelines"])
    def list_pipelines() -> list[dict]:
        """Every pipeline: published versions, the default one and the endpoint URLs."""
        return pipelines_json(config, store)

    @router.get("/schedules", tags=["schedules"])
    def list_schedules() -> list[dict]:
        """Every schedule (``schedules --json`` objects), sorted by next fire."""
        return [
            s.to_json()
            for s in collect_schedules(config, store, clock.now(), warn=_warn_api_schedule)
        ]

    from scheduler.api.sdk_routes import sdk_routes  # here: it imports this module's helpers

    sdk_routes(router, control, store, config)
    return router


def _problem(loc: tuple[str, ...], msg: str, kind: str) -> dict[str, Any]:
    """One problem in FastAPI's own 422 shape."""
    return {"loc": list(loc), "msg": msg, "type": kind}


def raise_parameter(exc: ParameterError, body: SubmitBody) -> NoReturn:
    """A 422 naming the field where the client put the bad parameter."""
    where = (
        "DataPathAssignments" if exc.name in body.DataPathAssignments else "ParameterAssignments"
    )
    raise HTTPException(422, detail=[parameter_problem(exc, ("body", where))]) from exc


def body_parameters(body: SubmitBody) -> dict[str, Any]:
    """ParameterAssignments plus DataPathAssignments as ``datastore://`` paths."""
    parameters = dict(body.ParameterAssignments)
    for param, where in body.DataPathAssignments.items():
        if param in parameters:
            problem = ParameterError(
                f"parameter '{param}' is given in both ParameterAssignments and "
                "DataPathAssignments",
                name=param,
            )
            raise_parameter(problem, body)
        parameters[param] = f"datastore://{where.DataStoreName}/{where.RelativePath}"
    return parameters


def submit_answer(request: Request, run: RunRecord) -> SubmitAnswer:
    return SubmitAnswer(
        Id=run.id,
        Status=RunStatusCode(StatusCode=STATUS_CODES.get(run.status, run.status)),
        ExperimentName=run.experiment,
        url=str(request.url_for("get_run", run_id=run.id)),
    )


def check_pipeline_name(config: Config, store: Store, name: str) -> None:
    """Only a declared or published pipeline: ``find_pipeline`` also takes a path to a
    pipeline.yaml, which a caller over HTTP must never be able to name."""
    from scheduler.definitions import discover_pipelines
    from scheduler.services.publish import list_versions

    if name not in discover_pipelines(config) and not list_versions(store, name):
        raise NotFound(f"no pipeline named '{name}'", hint="GET /api/v1/pipelines lists them")


def pipelines_json(config: Config, store: Store) -> list[dict]:
    """``GET /api/v1/pipelines``: every pipeline (working copy or published), its versions,
    the default one and the endpoint URLs."""
    from scheduler.definitions import discover_pipelines
    from scheduler.services.publish import default_version, endpoint_url, list_versions

    working = set(discover_pipelines(config))
    by_name: dict[str, list[Any]] = {name: [] for name in working}
    for published in list_versions(store):
        by_name.setdefault(published.pipeline, []).append(published)
    return [
        {
            "name": name,
            "working_copy": name in working,
            "default_version": default_version(store, name),
            "endpoint": endpoint_url(config, name, None),
            "versions": [
                {**v.to_json(), "endpoint": endpoint_url(config, name, v.version)}
                for v in by_name[name]
            ],
        }
        for name in sorted(by_name)
    ]


def _warn_api_schedule(text: str) -> None:
    log.warning("api_schedule_unreadable", detail=text)
