"""A standby hands changes on to the leader: a request that changes something (any method but
GET, HEAD and OPTIONS) under ``/api/`` is sent to the leader's API with the caller's own
``Authorization``, and the leader's answer goes back as it came. A client may then talk to any
daemon.

What cannot be handed on reaches the standby's own handlers, which answer 503 naming the
leader: no leader known yet, a request without a bearer token (the control socket's), a body
larger than ``api.max_body_bytes`` (uploads go to the leader directly), or a leader that does
not answer.

The standard library's ``http.client`` sends it, in a worker thread: one request with a
known body needs no client library, and pipesched has none at run time.
"""

from __future__ import annotations

import asyncio
import http.client
import ssl
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import structlog

log = structlog.get_logger("scheduler.api.forward")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORWARD_TIMEOUT = 30.0
PASSED_HEADERS = (b"authorization", b"content-type", b"accept")
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}
)
FORWARDED_MARK = "x-pipesched-forwarded"  # a leader that is a standby by now does not forward again

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


class ForwardChanges:
    """ASGI middleware for a standby's TCP listener; ``leader_url()`` is the leader's API URL
    (None while unknown)."""

    def __init__(self, app: Any, *, leader_url: Callable[[], str | None], max_body: int) -> None:
        self.app = app
        self.leader_url = leader_url
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = self.leader_url() if scope["type"] == "http" else None
        headers = dict(scope.get("headers") or [])
        if (
            target is None
            or scope["method"] in SAFE_METHODS
            or not scope["path"].startswith("/api/")
            or not headers.get(b"authorization", b"").lower().startswith(b"bearer ")
            or FORWARDED_MARK.encode() in headers
        ):
            await self.app(scope, receive, send)
            return
        body, complete = await _read_body(receive, self.max_body)
        if not complete:  # too large to hold: the standby's own answer names the leader
            await self.app(scope, _replay(body, receive), send)
            return
        path = scope["path"] + (
            f"?{scope['query_string'].decode()}" if scope["query_string"] else ""
        )
        try:
            status, answer_headers, answer = await asyncio.to_thread(
                _send, target, scope["method"], path, headers, body
            )
        except OSError as exc:
            log.warning("forward_failed", leader=target, path=scope["path"], error=str(exc))
            await self.app(scope, _replay(body, receive), send)
            return
        log.info(
            "forwarded", leader=target, method=scope["method"], path=scope["path"], status=status
        )
        await send({"type": "http.response.start", "status": status, "headers": answer_headers})
        await send({"type": "http.response.body", "body": answer})


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """The request body, and whether all of it fit in ``limit`` (else what was read so far)."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if len(body) > limit:
            return body, False
        if not message.get("more_body"):
            return body, True


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` first, then whatever is left of the request."""
    given = False

    async def again() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


def _send(
    target: str, method: str, path: str, headers: dict[bytes, bytes], body: bytes
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    parts = urlsplit(target)
    host, port = parts.hostname or "127.0.0.1", parts.port
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        context = ssl.create_default_context()
        connection = http.client.HTTPSConnection(
            host, port, timeout=FORWARD_TIMEOUT, context=context
        )
    else:
        connection = http.client.HTTPConnection(host, port, timeout=FORWARD_TIMEOUT)
    sent = {
        k.decode("latin-1"): v.decode("latin-1") for k, v in headers.items() if k in PASSED_HEADERS
    }
    sent[FORWARDED_MARK] = "1"
    try:
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        answer = response.read()
        kept = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in response.getheaders()
            if name.lower() not in HOP_BY_HOP
        ]
        kept.append((b"content-length", str(len(answer)).encode()))
        return response.status, kept, answer
    finally:
        connection.close()
