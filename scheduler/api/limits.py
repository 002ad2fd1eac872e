"""Request size limits, enforced while the body arrives (a pure ASGI middleware: nothing is
buffered to be measured). A JSON body may have ``api.max_body_bytes``; an upload (a snapshot,
a datastore file) ``api.max_upload_bytes``, and its handler streams it to disk. Larger: 413,
as soon as ``Content-Length`` says so or the bytes read pass the limit.

The maximum lengths of names and text fields live with the request models (``bodies``)."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

UPLOAD_PATHS = ("/api/v1/snapshots", "/api/v1/datastores/")
MODEL_UPLOAD = re.compile(r"/api/v1/models/[^/]+/files")
MAX_NAME = 256  # a name: experiment, pipeline, schedule, step, version label, datastore
MAX_TEXT = 4096  # a description, a parameter value, a relative path


class _TooLarge(HTTPException):
    """An HTTPException: FastAPI turns other errors while reading a body into 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, detail=_detail(limit))


def is_upload(path: str) -> bool:
    return (
        path == UPLOAD_PATHS[0]
        or path.startswith(UPLOAD_PATHS[1])
        or MODEL_UPLOAD.fullmatch(path) is not None
    )


class BodyLimit:
    """413 for a request body over its limit, counted while it is read."""

    def __init__(self, app: App, *, max_body_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_upload_bytes if is_upload(scope["path"]) else self.max_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, limit)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(limit)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except _TooLarge:
            if started:  # the handler answered before reading it all: nothing left to say
                raise
            await _refuse(send, limit)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


def _detail(limit: int) -> str:
    return f"the request body is larger than {limit} bytes"


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps({"detail": _detail(limit)}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
