"""The REST API of DESIGN (``/api/v1``): submit runs the way Azure ML clients do, read run
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

from scheduler import logfiles
from scheduler.api import logs
from scheduler.api.control import API_PREFIX, DaemonControl, parameter_problem
from scheduler.clock import SYSTEM_CLOCK, Clock
from scheduler.errors import DefinitionErrors, NotFound, ParameterError
from scheduler.triggers.summary import collect as collect_schedules

if TYPE_CHECKING:
    from scheduler.config import Config
    from scheduler.records import RunRecord
    from scheduler.store import Store

log = structlog.get_logger(__name__)

# DESIGN: run status → Azure ML's StatusCode.
STATUS_CODES = {
    "queued": "NotStarted",
    "running": "Running",
    "completed": "Finished",
    "failed": "Failed",
    "canceled": "Canceled",
}
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
    """The ``/api/v1`` paths of issue 6 (the control paths are ``control.control_router``)."""
    router = APIRouter(prefix=API_PREFIX)

    async def submit(
        request: Request, name: str, version: str | None, body: SubmitBody
    ) -> SubmitAnswer:
        await asyncio.to_thread(check_pipeline_name, config, store, name)
        parameters = body_parameters(body)
        try:
            run = await control.submit_pipeline_run(
                name, version, parameters, body.ExperimentName, body.ContinueRunOnStepFailure
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

    sdk_routes(router, control, store, config)
    return router


class SnapshotAnswer(BaseModel):
    """A stored snapshot: its id (the content hash runs record), pipeline name and step ids."""

    id: str
    pipeline: str
    steps: list[str]


class PublishSnapshotBody(BaseModel):
    snapshot: str = Field(min_length=1, description="a snapshot id from POST /api/v1/snapshots")
    version: str | None = None
    description: str | None = None


class PublishRunBody(BaseModel):
    name: str | None = Field(None, description="default: the run's pipeline")
    version: str | None = None
    description: str | None = None


class DefaultVersionBody(BaseModel):
    version: str = Field(min_length=1)


_BINARY = {"schema": {"type": "string", "format": "binary"}}
# application/octet-stream too: generic clients (and schemathesis) know how to send it.
_GZIP_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/gzip": _BINARY, "application/octet-stream": _BINARY},
    }
}


def sdk_routes(router: APIRouter, control: DaemonControl, store: Store, config: Config) -> None:
    """What the SDK's remote workspace needs beyond issue 6: upload a saved pipeline folder,
    run it, publish it or a finished run's definition, move an endpoint's default version."""
    from scheduler.publish import endpoint_url, publish_definition, publish_run
    from scheduler.publish import set_default_version as set_default
    from scheduler.snapshots import (
        MAX_UPLOAD_BYTES,
        BadUpload,
        UploadTooLarge,
        load_snapshot_by_id,
        unpack_upload,
    )

    def published_json(published: Any) -> dict:
        return {
            **published.to_json(),
            "endpoint": endpoint_url(config, published.pipeline, published.version),
        }

    @router.post(
        "/snapshots",
        status_code=201,
        tags=["snapshots"],
        openapi_extra=_GZIP_BODY,
        responses={413: {"description": "larger than a snapshot may be"}},
    )
    async def upload_snapshot(request: Request) -> SnapshotAnswer:
        """Store a tar.gz of a saved pipeline folder (``Pipeline.save``) as a snapshot to run
        or publish by its id; the same content always gets the same id."""
        data = await read_body(request, MAX_UPLOAD_BYTES)
        try:
            snapshot_id, pipeline = await asyncio.to_thread(unpack_upload, config, data)
        except DefinitionErrors as exc:
            detail = [_problem(("body",), str(e), "definition_error") for e in exc.errors]
            raise HTTPException(422, detail=detail) from exc
        except BadUpload as exc:
            raise HTTPException(422, detail=[_problem(("body",), str(exc), "bad_upload")]) from exc
        except UploadTooLarge as exc:
            raise HTTPException(413, detail=str(exc)) from exc
        log.info("snapshot_stored", snapshot=snapshot_id, pipeline=pipeline.name)
        return SnapshotAnswer(id=snapshot_id, pipeline=pipeline.name, steps=list(pipeline.steps))

    @router.post("/snapshots/{snapshot_id}/runs", status_code=202, tags=["snapshots"])
    async def submit_snapshot(
        request: Request, snapshot_id: str, body: Annotated[SubmitBody | None, Body()] = None
    ) -> SubmitAnswer:
        """Run a stored snapshot (Azure ML's body, as for a published pipeline)."""
        body = body or SubmitBody()
        definition = await asyncio.to_thread(load_snapshot_by_id, config, snapshot_id)
        parameters = body_parameters(body)
        try:
            run = await control.submit_definition_run(
                definition,
                None,
                parameters,
                body.ExperimentName,
                body.ContinueRunOnStepFailure,
                regenerate_outputs=body.RegenerateOutputs,
            )
        except ParameterError as exc:
            raise_parameter(exc, body)
        log.info("api_run_submitted", run_id=run.id, pipeline=run.pipeline, snapshot=snapshot_id)
        return submit_answer(request, run)

    @router.post("/pipelines/{name}/versions", status_code=201, tags=["pipelines"])
    async def publish_snapshot(name: str, body: PublishSnapshotBody) -> dict:
        """Publish a stored snapshot as a version of pipeline ``name`` (the first version
        published becomes the endpoint's default); 409 when the label is taken."""
        definition = await asyncio.to_thread(load_snapshot_by_id, config, body.snapshot)
        published = await _publishing(
            ("path", "name"),
            publish_definition,
            config,
            store,
            definition,
            name=name,
            version=body.version,
            description=body.description,
        )
        return published_json(published)

    @router.post("/runs/{run_id}/publish", status_code=201, tags=["runs"])
    async def publish_a_run(
        run_id: str, body: Annotated[PublishRunBody | None, Body()] = None
    ) -> dict:
        """Publish the definition a completed run ran (Azure's ``publish_pipeline``)."""
        body = body or PublishRunBody()
        published = await _publishing(
            ("body", "name"),
            publish_run,
            config,
            store,
            run_id,
            name=body.name,
            version=body.version,
            description=body.description,
        )
        return published_json(published)

    @router.put("/pipelines/{name}/default", tags=["pipelines"])
    def set_default_version(name: str, body: DefaultVersionBody) -> dict:
        """Point the pipeline's endpoint at a published version."""
        set_default(store, name, body.version)
        return {
            "name": name,
            "default_version": body.version,
            "endpoint": endpoint_url(config, name, None),
        }


async def _publishing(name_loc: tuple[str, str], publish: Any, *args: Any, **kwargs: Any) -> Any:
    """Publish in a thread (it copies files); a bad name or label is a 422 naming it."""
    from scheduler.publish import BadLabel

    try:
        return await asyncio.to_thread(publish, *args, **kwargs)
    except BadLabel as exc:
        loc = name_loc if exc.field == "name" else ("body", "version")
        raise HTTPException(422, detail=[_problem(loc, str(exc), "value_error")]) from exc


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit``."""
    declared = request.headers.get("content-length", "")
    too_large = HTTPException(413, detail=f"the upload is larger than {limit} bytes")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


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
    from scheduler.publish import list_versions

    if name not in discover_pipelines(config) and not list_versions(store, name):
        raise NotFound(f"no pipeline named '{name}'", hint="GET /api/v1/pipelines lists them")


def pipelines_json(config: Config, store: Store) -> list[dict]:
    """``GET /api/v1/pipelines``: every pipeline (working copy or published), its versions,
    the default one and the endpoint URLs."""
    from scheduler.definitions import discover_pipelines
    from scheduler.publish import default_version, endpoint_url, list_versions

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
