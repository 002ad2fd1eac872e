"""The REST paths the SDK's remote workspace needs beyond the REST API for clients: upload a saved pipeline
folder (a snapshot), run it, publish it or a finished run's definition, move an endpoint's
default version, and list the compute targets. Same token rule and error shapes as the rest of ``/api/v1``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import structlog
from fastapi import APIRouter, Body, HTTPException, Query, Request
from pydantic import BaseModel, Field

from scheduler.api.bodies import (
    SubmitAnswer,
    SubmitBody,
    body_parameters,
    problem,
    raise_parameter,
    submit_answer,
)
from scheduler.api.limits import MAX_NAME, MAX_TEXT
from scheduler.core.errors import DefinitionErrors, ParameterError
from scheduler.services.publish import (
    BadLabel,
    PublishedVersion,
    add_to_endpoint,
    endpoint_json,
    endpoint_url,
    endpoint_version,
    publish_definition,
    publish_run,
    rename_endpoint,
    set_endpoint_default,
)
from scheduler.services.publish import set_default_version as set_default
from scheduler.services.snapshots import (
    BadUpload,
    UploadTooLarge,
    load_snapshot_by_id,
    unpack_upload,
    upload_file,
    upload_limit,
)

if TYPE_CHECKING:
    from scheduler.api.control import DaemonControl
    from scheduler.definitions.config import Config
    from scheduler.store import Store

log = structlog.get_logger("scheduler.api.rest")


class SnapshotAnswer(BaseModel):
    """A stored snapshot: its id (the content hash runs record), pipeline name and step ids."""

    id: str
    pipeline: str
    steps: list[str]


class PublishSnapshotBody(BaseModel):
    snapshot: str = Field(
        min_length=1, max_length=64, description="a snapshot id from POST /api/v1/snapshots"
    )
    version: str | None = Field(default=None, max_length=MAX_NAME)
    description: str | None = Field(default=None, max_length=MAX_TEXT)


class PublishRunBody(BaseModel):
    name: str | None = Field(
        default=None, max_length=MAX_NAME, description="default: the run's pipeline"
    )
    version: str | None = Field(default=None, max_length=MAX_NAME)
    description: str | None = Field(default=None, max_length=MAX_TEXT)


class DefaultVersionBody(BaseModel):
    version: str = Field(min_length=1, max_length=MAX_NAME)


class EndpointVersionBody(BaseModel):
    """A published pipeline (of any name) for an endpoint: ``pipeline`` + its ``version``."""

    pipeline: str = Field(min_length=1, max_length=MAX_NAME)
    version: str = Field(min_length=1, max_length=MAX_NAME)
    create: bool = Field(default=False, description="make the endpoint when it does not exist")
    description: str | None = Field(default=None, max_length=MAX_TEXT)


class EndpointNameBody(BaseModel):
    name: str = Field(min_length=1, max_length=MAX_NAME)


_BINARY = {"schema": {"type": "string", "format": "binary"}}
# application/octet-stream too: generic clients (and schemathesis) know how to send it.
_GZIP_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/gzip": _BINARY, "application/octet-stream": _BINARY},
    }
}


def sdk_routes(router: APIRouter, control: DaemonControl, store: Store, config: Config) -> None:
    """What the SDK's remote workspace needs beyond the REST API for clients: upload a saved pipeline folder,
    run it, publish it or a finished run's definition, move an endpoint's default version."""

    def published_json(published: PublishedVersion) -> dict:
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
        spool = await asyncio.to_thread(upload_file, config)
        try:
            await stream_body(request, spool, upload_limit(config))
            snapshot_id, pipeline = await asyncio.to_thread(unpack_upload, config, spool)
        except DefinitionErrors as exc:
            detail = [problem(("body",), str(e), "definition_error") for e in exc.errors]
            raise HTTPException(422, detail=detail) from exc
        except BadUpload as exc:
            raise HTTPException(422, detail=[problem(("body",), str(exc), "bad_upload")]) from exc
        except UploadTooLarge as exc:
            raise HTTPException(413, detail=str(exc)) from exc
        finally:
            spool.unlink(missing_ok=True)
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
        """Publish the definition a run ran, finished or not (Azure's
        ``publish_pipeline``)."""
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

    @router.get("/compute", tags=["compute"])
    def list_compute() -> list[dict]:
        """The config's compute targets, where steps can run: name, type, max_workers."""
        return [
            {"name": name, "type": target.type, "max_workers": target.max_workers}
            for name, target in config.compute.items()
        ]

    @router.get("/datastores", tags=["datastores"])
    def list_datastores() -> list[dict]:
        """The config's datastores, by name (their folders stay the daemon's business)."""
        return [{"name": name} for name in config.datastores]

    endpoint_routes(router, control, store, config)

    @router.put("/pipelines/{name}/default", tags=["pipelines"])
    def set_default_version(name: str, body: DefaultVersionBody) -> dict:
        """Point the pipeline's endpoint at a published version."""
        set_default(store, name, body.version)
        return {
            "name": name,
            "default_version": body.version,
            "endpoint": endpoint_url(config, name, None),
        }


def endpoint_routes(
    router: APIRouter, control: DaemonControl, store: Store, config: Config
) -> None:
    """Pipeline endpoints as Azure ML has them: versions numbered 0, 1, 2... apart from the
    published pipelines' labels, any published pipeline as a version, a stable id, and Azure's
    URL forms to run the default or one version."""

    @router.get("/endpoints", tags=["endpoints"])
    def list_endpoints() -> list[dict]:
        """Every pipeline endpoint: id, name, default version and versions (each naming the
        published pipeline it runs)."""
        return [endpoint_json(config, e) for e in store.list_endpoints()]

    @router.post("/endpoints/{name}/versions", status_code=201, tags=["endpoints"])
    def add_version(name: str, body: EndpointVersionBody) -> dict:
        """Add a published pipeline as the endpoint's next version (one it has keeps its
        number); with ``create``, make the endpoint first."""
        endpoint = _labelled(
            add_to_endpoint,
            store,
            name,
            body.pipeline,
            body.version,
            create=body.create,
            description=body.description,
        )
        return endpoint_json(config, endpoint)

    @router.put("/endpoints/{name}/default", tags=["endpoints"])
    def set_endpoint_default_version(name: str, body: EndpointVersionBody) -> dict:
        """Make a published pipeline (of any name) the endpoint's default."""
        return endpoint_json(config, set_endpoint_default(store, name, body.pipeline, body.version))

    @router.put("/endpoints/{name}/name", tags=["endpoints"])
    def rename(name: str, body: EndpointNameBody) -> dict:
        """Rename the endpoint (Azure's ``set_name``); its id and versions stay."""
        return endpoint_json(config, _labelled(rename_endpoint, store, name, body.name))

    async def submit(
        request: Request, endpoint_id: str | None, name: str | None, number: str | None, body: Any
    ) -> SubmitAnswer:
        body = body or SubmitBody()
        endpoint = await asyncio.to_thread(store.get_endpoint, name, endpoint_id=endpoint_id)
        pipeline, label = endpoint_version(store, endpoint, number)
        try:
            run = await control.submit_pipeline_run(
                pipeline,
                label,
                body_parameters(body),
                body.ExperimentName,
                body.ContinueRunOnStepFailure,
                regenerate_outputs=body.RegenerateOutputs,
            )
        except ParameterError as exc:
            raise_parameter(exc, body)
        log.info("api_run_submitted", run_id=run.id, endpoint=endpoint.name, version=label)
        return submit_answer(request, run)

    submit_path = "/PipelineRuns/PipelineEndpointSubmit"

    @router.post(f"{submit_path}/Id/{{endpoint_id}}", status_code=202, tags=["endpoints"])
    async def submit_default_by_id(
        request: Request, endpoint_id: str, body: Annotated[SubmitBody | None, Body()] = None
    ) -> SubmitAnswer:
        """Run the endpoint's default version (Azure's ``PipelineEndpoint.endpoint``)."""
        return await submit(request, endpoint_id, None, None, body)

    @router.post(
        f"{submit_path}/Id/{{endpoint_id}}/{{version}}", status_code=202, tags=["endpoints"]
    )
    async def submit_version_by_id(
        request: Request,
        endpoint_id: str,
        version: str,
        body: Annotated[SubmitBody | None, Body()] = None,
    ) -> SubmitAnswer:
        """Run the endpoint's version ``version`` ("0", "1"...)."""
        return await submit(request, endpoint_id, None, version, body)

    @router.post(f"{submit_path}/Name", status_code=202, tags=["endpoints"])
    async def submit_by_name(
        request: Request,
        name: Annotated[str, Query(min_length=1, max_length=MAX_NAME)],
        pipelineVersion: Annotated[str | None, Query(max_length=MAX_NAME)] = None,
        body: Annotated[SubmitBody | None, Body()] = None,
    ) -> SubmitAnswer:
        """Run an endpoint found by name: its default, or ``pipelineVersion``."""
        return await submit(request, None, name, pipelineVersion, body)


def _labelled(action: Any, *args: Any, **kwargs: Any) -> Any:
    """A bad endpoint name is a 422 naming it."""
    try:
        return action(*args, **kwargs)
    except BadLabel as exc:
        raise HTTPException(
            422, detail=[problem(("body", "name"), str(exc), "value_error")]
        ) from exc


async def _publishing(name_loc: tuple[str, str], publish: Any, *args: Any, **kwargs: Any) -> Any:
    """Publish in a thread (it copies files); a bad name or label is a 422 naming it."""
    try:
        return await asyncio.to_thread(publish, *args, **kwargs)
    except BadLabel as exc:
        loc = name_loc if exc.field == "name" else ("body", "version")
        raise HTTPException(422, detail=[problem(loc, str(exc), "value_error")]) from exc


async def stream_body(request: Request, path: Path, limit: int) -> None:
    """Write the request body to ``path`` as it arrives (never whole in memory), refused with
    413 as soon as it is known to exceed ``limit``."""
    declared = request.headers.get("content-length", "")
    too_large = HTTPException(413, detail=f"the upload is larger than {limit} bytes")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    size = 0
    with open(path, "wb") as out:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large
            out.write(chunk)
