"""The API on ``api.host:api.port`` (TCP, TLS when ``api.tls`` is set), served by uvicorn inside
the daemon's own event loop, next to the unix socket.

We bind the socket ourselves, as ``server.serve_unix`` does: the bind error (address in use)
surfaces here as a user error instead of uvicorn's ``sys.exit``, and a configured port 0 gives
a free port that ``TcpServer.port`` reports. A non-loopback address without TLS is refused
unless ``allow_insecure_remote`` says otherwise: bearer tokens must not cross a network in clear.
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, Any

import uvicorn

from scheduler.api.server import GRACEFUL_SHUTDOWN, _EmbeddedServer
from scheduler.core.errors import PipeschedError
from scheduler.definitions.config import is_loopback

if TYPE_CHECKING:
    from scheduler.definitions.config import Config

BACKLOG = 512


class TcpServer:
    """An app served on TCP by a task in the running loop; ``await stop()`` ends it."""

    def __init__(self, server: _EmbeddedServer, task: asyncio.Task[None], sock: socket.socket):
        self._server = server
        self._task = task
        self.host, self.port = sock.getsockname()[:2]
        self.scheme = "https" if server.config.is_ssl else "http"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return not self._task.done()

    async def stop(self) -> None:
        """Stop accepting; open requests get a few seconds to finish (a followed log ends)."""
        self._server.should_exit = True
        await self._task


def check_bind(config: Config) -> None:
    """Refuse to serve tokens in clear text to other machines."""
    api = config.api
    if api.tls is None and not api.allow_insecure_remote and not is_loopback(api.host):
        raise PipeschedError(
            f"api.host {api.host} is reachable from other machines but api.tls is not set",
            hint="set api.tls (cert, key), bind 127.0.0.1, or set allow_insecure_remote: true",
        )


async def serve_tcp(app: Any, config: Config) -> TcpServer:
    """Serve ``app`` on ``config.api`` from the current event loop; return once it listens."""
    check_bind(config)
    sock = _bind(config.api.host, config.api.port)
    tls = config.api.tls
    uv_config = uvicorn.Config(
        app,
        lifespan="off",  # a failed lifespan makes uvicorn call sys.exit
        log_config=None,  # logging is the daemon's (structlog)
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
        server_header=False,
        backlog=BACKLOG,
        ssl_certfile=str(tls.cert) if tls else None,
        ssl_keyfile=str(tls.key) if tls else None,
    )
    server = _EmbeddedServer(uv_config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name=f"api:{config.api.port}")
    listening = asyncio.create_task(server.listening.wait())
    try:
        await asyncio.wait({task, listening}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        listening.cancel()
    if task.done():  # it ended before it listened (a bad certificate, say): surface why
        sock.close()
        task.result()
        raise PipeschedError(f"the API server on {config.api.host}:{config.api.port} stopped")
    return TcpServer(server, task, sock)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    try:
        sock = socket.create_server(
            (host.strip("[]"), port), family=family, backlog=BACKLOG, reuse_port=False
        )
    except OSError as exc:
        raise PipeschedError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="is another daemon or service using that port? set api.port",
        ) from exc
    # Accepted connections inherit TCP_NODELAY from the listener. Without it a keep-alive
    # client waits ~40 ms per request (Nagle against delayed ACKs): uvicorn sets it only on
    # sockets it binds itself. Measured: /healthz 45 ms → 1 ms on a reused connection.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    return sock
