"""Datastore files over REST, for the SDK's ``Datastore.upload``/``download`` through a daemon (the
only way to put data into a datastore from another machine):

- ``PUT /api/v1/datastores/{name}/files/{path}`` streams the body into that file (never whole in
  memory; at most ``api.max_upload_bytes``); ``?overwrite=true`` replaces a file that is there,
  else that is a 409.
- ``GET /api/v1/datastores/{name}/files/{path}`` streams a file out;
  ``GET /api/v1/datastores/{name}/files/{folder}/`` (a trailing ``/``; the root is ``files/``)
  lists a folder, one level. A folder is downloaded as its listing plus one GET per file: each
  answer is a plain file, streamed, so neither side holds more than a chunk of it, a download
  stopped half-way is resumed by file, and the daemon never builds an archive.

``{path}`` is the path from the datastore's root as escaped text (``\\xHH`` for a byte that is
not UTF-8, ``\\\\`` for a backslash: ``scheduler.core.pathnames``), the form ``datastore://``
parameters carry; listings name entries the same way. Confinement, modes and atomic writes are
``scheduler.services.datastores``'. Same token rule and error shapes as the rest of ``/api/v1``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO, Literal
from urllib.parse import unquote_to_bytes

import structlog
from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from scheduler.api.bodies import problem
from scheduler.api.control import API_PREFIX
from scheduler.api.limits import MAX_NAME
from scheduler.core.pathnames import escape_name, unescape_name
from scheduler.services import datastores as datastore_service
from scheduler.services.datastores import (
    BadDatastorePath,
    DatastoreEntry,
    DatastoreUploadTooLarge,
)

if TYPE_CHECKING:
    from scheduler.definitions.config import Config
    from scheduler.services.datastores import NewFile

log = structlog.get_logger("scheduler.api.rest")

WRITE_BATCH = 1024 * 1024  # bytes gathered before a write in a worker thread
_PATH_HELP = (
    "the path from the datastore's root, as escaped text (\\xHH for a byte that is not UTF-8, "
    "\\\\ for a backslash); a trailing '/' on a GET lists that folder"
)
DatastoreName = Annotated[str, PathParam(min_length=1, max_length=MAX_NAME)]
FilePath = Annotated[str, PathParam(description=_PATH_HELP)]
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_FILE_BODY = {"requestBody": {"required": True, "content": {"application/octet-stream": _BINARY}}}


class StoredFile(BaseModel):
    """A file written by ``PUT``: its datastore, its path (escaped text) and size in bytes."""

    datastore: str
    path: str
    size: int
    replaced: bool


class FolderEntry(BaseModel):
    """A file (with its size) or a folder; ``name`` is escaped text; ``modified`` in seconds
    since the epoch."""

    name: str
    type: Literal["file", "folder"]
    size: int | None
    modified: float | None


class FolderListing(BaseModel):
    """One folder of a datastore, one level: files and folders by name."""

    datastore: str
    path: str
    entries: list[FolderEntry]


def _listing_or_file() -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": "The file's bytes; for a path ending in '/', the folder's listing",
            "content": {
                "application/octet-stream": _BINARY,
                "application/json": {"schema": {"$ref": "#/components/schemas/FolderListing"}},
            },
        },
        404: {"description": "No such datastore, file or folder"},
        409: {"description": "A folder where a file is asked, or a file where a folder is"},
        422: {"description": "The path leads outside the datastore, or is not a path"},
    }


def datastore_router(config: Config) -> APIRouter:
    """``/api/v1/datastores/{name}/files/...``."""
    router = APIRouter(prefix=API_PREFIX)

    @router.put(
        "/datastores/{name}/files/{path:path}",
        status_code=201,
        tags=["datastores"],
        openapi_extra=_FILE_BODY,
        responses={
            200: {"description": "An existing file was replaced (overwrite=true)"},
            201: {"description": "The file was created"},
            404: {"description": "No such datastore"},
            409: {"description": "A file is there and overwrite is false, or a folder is there"},
            413: {"description": "The body is larger than api.max_upload_bytes"},
            422: {"description": "The path leads outside the datastore, or is not a path"},
        },
    )
    async def put_file(
        request: Request,
        response: Response,
        name: DatastoreName,
        path: FilePath,
        overwrite: Annotated[
            bool, Query(description="replace a file that is there (else: 409)")
        ] = False,
    ) -> StoredFile:
        """Write the request body (any bytes) to ``path`` in the datastore, creating the folders
        on the way. The file appears whole when the body has arrived, or not at all."""
        relative = _relative(request, path)
        limit = config.api.max_upload_bytes
        writer = await asyncio.to_thread(
            _refusing,
            datastore_service.new_file,
            config,
            name,
            relative,
            overwrite=overwrite,
            limit=limit,
        )
        try:
            await _stream_into(request, writer)
            replaced = await asyncio.to_thread(_refusing, writer.commit)
        except BaseException:
            await asyncio.to_thread(writer.abort)
            raise
        response.status_code = 200 if replaced else 201
        log.info("datastore_file_stored", datastore=name, size=writer.size, replaced=replaced)
        return StoredFile(
            datastore=name, path=escape_name(relative), size=writer.size, replaced=replaced
        )

    @router.get(
        "/datastores/{name}/files/{path:path}",
        tags=["datastores"],
        response_model=None,
        responses=_listing_or_file(),
    )
    def get_file_or_folder(
        request: Request, name: DatastoreName, path: FilePath
    ) -> StreamingResponse | FolderListing:
        """A file's bytes, streamed; or, for a path ending in '/' (``files/`` for the root),
        the folder's files and folders, one level."""
        relative = _relative(request, path)
        if relative == "" or relative.endswith("/"):
            entries = _refusing(datastore_service.list_folder, config, name, relative)
            return FolderListing(
                datastore=name,
                path=escape_name(relative),
                entries=[FolderEntry(**_entry(entry)) for entry in entries],
            )
        handle = _refusing(datastore_service.open_file, config, name, relative)
        return StreamingResponse(_chunks(handle), media_type="application/octet-stream")

    return router


def _relative(request: Request, path: str) -> str:
    """The ``os.fsdecode`` path named by the URL's escaped text. A URL whose percent-escapes
    are not UTF-8 is refused rather than read with replacement characters."""
    raw = request.scope.get("raw_path")
    if isinstance(raw, bytes):
        try:
            unquote_to_bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise HTTPException(
                422,
                detail=[
                    problem(
                        ("path", "path"),
                        "the path is not UTF-8: write a byte that is not UTF-8 as \\xHH",
                        "value_error",
                    )
                ],
            ) from None
    return unescape_name(path)


def _refusing(call: Any, *args: Any, **kwargs: Any) -> Any:
    """``call``, with a path that cannot be used as a 422 naming the path and an upload over the
    limit as a 413 (other user errors keep their usual answers: 404, 409)."""
    try:
        return call(*args, **kwargs)
    except BadDatastorePath as exc:
        detail = [problem(("path", "path"), str(exc), "value_error")]
        raise HTTPException(422, detail=detail) from exc
    except DatastoreUploadTooLarge as exc:
        raise HTTPException(413, detail=str(exc)) from exc


async def _stream_into(request: Request, writer: NewFile) -> None:
    """The body into ``writer`` as it arrives, a batch at a time in a worker thread (the loop
    never waits on the disk)."""
    batch = bytearray()
    async for chunk in request.stream():
        batch += chunk
        if len(batch) >= WRITE_BATCH:
            await asyncio.to_thread(_refusing, writer.write, bytes(batch))
            batch.clear()
    if batch:
        await asyncio.to_thread(_refusing, writer.write, bytes(batch))


def _entry(entry: DatastoreEntry) -> dict[str, Any]:
    return entry.to_json()


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(datastore_service.CHUNK):
            yield chunk
