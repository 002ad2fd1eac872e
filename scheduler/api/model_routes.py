"""The model registry over REST: list and read versions, copy a version's files out, and
register a new version from uploaded files or from a run's step folder (what the SDK's remote
workspace needs for ``Model.register``, ``run.register_model`` and ``model.download``).

Registering from a notebook on another machine takes two requests: ``POST
/api/v1/models/{name}/files`` streams a tar archive of the model's file or folder to the
daemon's disk, unpacks it (checked) and answers an upload id; ``POST /api/v1/models/{name}``
registers it with its tags, properties and description. Same token rule and error shapes as the rest of ``/api/v1``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import structlog
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.background import BackgroundTask

from scheduler.api.bodies import problem
from scheduler.api.limits import MAX_NAME, MAX_TEXT
from scheduler.api.sdk_routes import stream_body
from scheduler.runtime import MODEL_NAME_PATTERN
from scheduler.services import models as model_service
from scheduler.services.models import UPLOAD_PREFIX, BadModelUpload, ModelUploadTooLarge

if TYPE_CHECKING:
    from scheduler.definitions.config import Config
    from scheduler.store import Store
    from scheduler.store.records import ModelRecord

log = structlog.get_logger("scheduler.api.rest")

UPLOAD_ID = re.compile(rf"^{UPLOAD_PREFIX}[0-9a-f]{{32}}$")
_TAR_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-tar": {"schema": {"type": "string", "format": "binary"}},
            "application/gzip": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
CHUNK = 1024 * 1024
_FILTER = "KEY or KEY=VALUE (no control characters); repeat for more"
Filter = Annotated[str, StringConstraints(pattern=r"^[^=\x00-\x1f]+(=[^\x00-\x1f]*)?$")]

# A name the registry's folder can hold (the schema says so: a schema-valid name is accepted).
ModelName = Annotated[str, PathParam(pattern=f"^{MODEL_NAME_PATTERN.pattern}$")]
Version = Annotated[int, PathParam(ge=1, le=2**31 - 1)]


class UploadAnswer(BaseModel):
    """Files waiting on the daemon to be registered: pass ``upload`` to ``POST
    /api/v1/models/{name}`` (unused uploads are removed after a day)."""

    upload: str


class _NewVersion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tags: dict[str, Any] = Field(default_factory=dict)
    properties: dict[str, Any] = Field(default_factory=dict)
    description: str | None = Field(default=None, max_length=MAX_TEXT)


class FromUpload(_NewVersion):
    """A new version from ``upload``, an id from ``POST /api/v1/models/{name}/files``."""

    upload: str = Field(pattern=UPLOAD_ID.pattern)


class FromRun(_NewVersion):
    """A new version from a file or folder in ``run_id``'s step folder, as Azure's
    ``run.register_model`` does: ``model_path`` relative to it (e.g. ``outputs/model.pkl``;
    default: the model's name), in ``step`` or the one step that has it."""

    run_id: str = Field(min_length=1, max_length=MAX_NAME)
    step: str | None = Field(default=None, max_length=MAX_NAME)
    model_path: str | None = Field(default=None, max_length=MAX_TEXT)


def model_routes(router: APIRouter, store: Store, config: Config) -> None:
    """``/api/v1/models`` and below, on ``router``. The upload path comes before the version
    paths, and a version is digits only, so ``.../files`` is never taken for a version."""

    @router.get("/models", tags=["models"])
    def list_models(
        name: Annotated[str | None, Query(max_length=MAX_NAME)] = None,
        tag: Annotated[list[Filter] | None, Query(description=_FILTER)] = None,
        properties: Annotated[
            list[Filter] | None, Query(alias="property", description=_FILTER)
        ] = None,
        run_id: Annotated[str | None, Query(max_length=MAX_NAME)] = None,
        latest: bool = False,
    ) -> list[dict]:
        """Registered models (``models --json`` objects) by name, newest version first."""
        records = model_service.list_models(
            store, name, tags=tag or (), properties=properties or (), run_id=run_id, latest=latest
        )
        return [record.to_json() for record in records]

    @router.post(
        "/models/{name}/files",
        status_code=201,
        tags=["models"],
        openapi_extra=_TAR_BODY,
        responses={413: {"description": "larger than an upload may be"}},
    )
    async def upload(request: Request, name: ModelName) -> UploadAnswer:
        """Stream a tar archive (gzip or not) of one model file or folder to the daemon, to
        register with ``POST /api/v1/models/{name}``. Only plain files and folders under one
        top-level name are taken: anything else is a 422 before it is registered."""
        limit = config.api.max_upload_bytes
        spool = await asyncio.to_thread(model_service.spool_file, config, "spool-")
        try:
            await stream_body(request, spool, limit)
            upload = await asyncio.to_thread(model_service.stage_upload, config, spool, limit=limit)
        except ModelUploadTooLarge as exc:
            raise HTTPException(413, detail=str(exc)) from exc
        except BadModelUpload as exc:
            detail = [problem(("body",), str(exc), "bad_upload")]
            raise HTTPException(422, detail=detail) from exc
        finally:
            spool.unlink(missing_ok=True)
        return UploadAnswer(upload=upload)

    @router.post("/models/{name}", status_code=201, tags=["models"])
    async def register(name: ModelName, body: FromUpload | FromRun) -> dict:
        """Register the next version of a model: from an upload, or from a run's step folder.
        Versions count 1, 2, 3 per name."""
        if isinstance(body, FromRun):
            record = await asyncio.to_thread(
                model_service.register_run_model,
                config,
                store,
                body.run_id,
                name,
                body.model_path,
                step=body.step,
                tags=body.tags,
                properties=body.properties,
                description=body.description,
            )
        else:
            record = await asyncio.to_thread(_register_upload, config, store, name, body)
        log.info("model_registered", model=record.id, run_id=record.run_id, step=record.step)
        return record.to_json()

    @router.get("/models/{name}", tags=["models"])
    def get_latest(name: ModelName) -> dict:
        """The latest version of a model (``models show NAME --json``)."""
        return store.get_model(name).to_json()

    @router.get("/models/{name}/{version:int}", tags=["models"])
    def get_version(name: ModelName, version: Version) -> dict:
        """One version of a model (``models show NAME:VERSION --json``)."""
        return store.get_model(name, version).to_json()

    @router.get(
        "/models/{name}/{version:int}/files",
        tags=["models"],
        response_class=StreamingResponse,
        responses={200: {"content": {"application/x-tar": {}}}},
    )
    def download(name: ModelName, version: Version) -> StreamingResponse:
        """A version's file or folder, under its own name, as a tar archive."""
        record = store.get_model(name, version)
        archive = model_service.spool_file(config, "download-")
        try:
            model_service.pack_model(record, archive)
        except BaseException:
            archive.unlink(missing_ok=True)
            raise
        return StreamingResponse(
            _chunks(archive),
            media_type="application/x-tar",
            background=BackgroundTask(archive.unlink, missing_ok=True),
        )


def _register_upload(config: Config, store: Store, name: str, body: FromUpload) -> ModelRecord:
    return model_service.register_upload(
        config,
        store,
        name,
        body.upload,
        tags=body.tags,
        properties=body.properties,
        description=body.description,
    )


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk
