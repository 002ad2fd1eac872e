"""The REST API (``/api/v1``): submit runs the way Azure ML clients do, read run
history, step logs, pipelines and schedules; and for the SDK's remote workspace, upload a saved
pipeline folder as a snapshot, run or publish it, publish a finished run's definition and move
an endpoint's default version (``sdk_routes``); the model registry (``model_routes``).

Handlers parse and present: submitting goes through the daemon
(``DaemonControl.submit_pipeline_run``: the dispatcher owns concurrency and the queue); reads are
the services' (runs, logs, pipelines, schedules). Reading handlers are plain ``def``s: FastAPI
runs them in its thread pool, so a slow database never stalls the daemon's loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.responses import StreamingResponse

from scheduler.api.backfill_routes import backfill_routes
from scheduler.api.bodies import (
    STATUS_CODES,
    SubmitAnswer,
    SubmitBody,
    body_parameters,
    raise_parameter,
    submit_answer,
)
from scheduler.api.control import API_PREFIX, DaemonControl
from scheduler.api.model_routes import model_routes
from scheduler.api.sdk_routes import sdk_routes
from scheduler.core.clock import SYSTEM_CLOCK, Clock
from scheduler.core.errors import ParameterError
from scheduler.services import pipelines as pipeline_service
from scheduler.services import runs as run_service
from scheduler.services.logs import open_logs
from scheduler.services.pipelines import PipelineEntry, check_pipeline_name
from scheduler.services.schedule_view import daemon_fields
from scheduler.services.schedules import list_schedules as collect_schedules

if TYPE_CHECKING:
    from scheduler.definitions.config import Config
    from scheduler.store import Store

__all__ = ["STATUS_CODES", "SubmitAnswer", "SubmitBody", "pipelines_json", "rest_router"]

log = structlog.get_logger(__name__)

MAX_PAGE = 1000
RunStatus = Literal["queued", "running", "completed", "failed", "canceled"]


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
        """Run history, newest first (``runs --json`` objects, each with the metrics its steps
        logged); page with ``before``."""
        records = run_service.list_runs(
            store,
            pipeline=pipeline,
            statuses=status or (),
            limit=limit,
            before=before,
            experiment=experiment,
        )
        metrics = run_service.runs_metrics(store, records)
        return [r.to_json() | metrics[r.id] for r in records]

    @router.get("/runs/{run_id}", name="get_run", tags=["runs"])
    def get_run(run_id: str) -> dict:
        """One run with its steps, attempts, metrics, outputs and the models it registered
        (``show --json``); any unique prefix of its id."""
        detail = run_service.get_run(store, run_id)
        return detail.to_json() | run_service.models_field(store, detail.run.id)

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
        logs = open_logs(store, run_id, step, attempt)
        data = b"".join(chunk for _, chunk in logs.initial(tail))
        if not follow:
            logs.require_log()
            return Response(data, media_type="text/plain")
        return StreamingResponse(_then(data, logs.follow_async(store)), media_type="text/plain")

    @router.get("/pipelines/{name}/metrics", tags=["pipelines"])
    def pipeline_metrics(
        name: str,
        metric: str | None = None,
        last: Annotated[int, Query(ge=0, description="the newest N runs; 0 for all")] = 20,
    ) -> list[dict]:
        """What the pipeline's last runs logged, newest first (``metrics --json`` objects):
        ``{id, created_at, status, metrics}``, ``metrics`` mapping a step id to ``{name:
        value}``."""
        history = run_service.metric_history(store, name, metric=metric, last=last)
        return [row.to_json() for row in history]

    @router.get("/pipelines", tags=["pipelines"])
    def list_pipelines() -> list[dict]:
        """Every pipeline: published versions, the default one and the endpoint URLs."""
        return pipelines_json(config, store)

    @router.get("/schedules", tags=["schedules"])
    def list_schedules() -> list[dict]:
        """Every schedule (``schedules --json`` objects, with the expression as written, the
        last fire and its outcome, and whether it has ended), sorted by next fire."""
        return [
            s.to_json() | daemon_fields(s)
            for s in collect_schedules(config, store, clock.now(), warn=_warn_api_schedule)
        ]

    sdk_routes(router, control, store, config)
    model_routes(router, store, config)
    backfill_routes(router, control, store)
    return router


def pipelines_json(config: Config, store: Store) -> list[dict[str, Any]]:
    """``GET /api/v1/pipelines``: every pipeline (working copy or published), by name, with its
    versions, the default one, the endpoint URLs and its working copy's check (description,
    steps, status, errors, path)."""
    return [
        _pipeline_json(e) | pipeline_service.entry_fields(config, e)
        for e in sorted(pipeline_service.list_pipelines(config, store), key=lambda e: e.name)
    ]


def _pipeline_json(entry: PipelineEntry) -> dict[str, Any]:
    return {
        "name": entry.name,
        "working_copy": entry.path is not None,
        "default_version": entry.default_version,
        "endpoint": entry.endpoint,
        "versions": [
            {**v.to_json(), "endpoint": entry.version_urls[v.version]} for v in entry.versions
        ],
    }


async def _then(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for data in rest:
        yield data


def _warn_api_schedule(text: str) -> None:
    log.warning("api_schedule_unreadable", detail=text)
