"""Serving an ASGI app on a unix socket inside the daemon's own event loop.

uvicorn is built to own a process: ``Server.serve`` swaps in its own SIGINT/SIGTERM handlers
(``capture_signals``) and re-raises the signal after shutdown. The daemon owns its signals (they
set events in its loop), so ``_EmbeddedServer`` neutralises that and is stopped by the daemon
instead (``UnixServer.stop``).

We bind the socket ourselves rather than pass ``uds=`` to uvicorn: uvicorn creates it with the
umask's mode and only then chmods it (0666 by default), and it would silently take over a socket
a live daemon still answers on. Here the mode is 0600 before ``listen()``, so there is no moment
at which another user could connect; the file's permissions are the API's only guard.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn

from scheduler.core.errors import PipeschedError
from scheduler.core.socketpath import socket_address

SOCKET_MODE = 0o600
# sun_path holds 108 bytes on Linux, with the terminating NUL.
MAX_SOCKET_PATH = 107
PROBE_TIMEOUT = 1.0
GRACEFUL_SHUTDOWN = 5  # seconds an open request may take to finish once the daemon stops


class SocketInUse(PipeschedError):
    """Another process answers on the API socket."""


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handlers alone and says when it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the daemon's handlers stay in place

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.listening.set()


class UnixServer:
    """An app served on a unix socket by a task in the running loop; ``await stop()`` ends it."""

    def __init__(self, server: _EmbeddedServer, task: asyncio.Task[None], path: Path) -> None:
        self._server = server
        self._task = task
        self.path = path
        self._inode = os.stat(path).st_ino

    @property
    def running(self) -> bool:
        return not self._task.done()

    async def stop(self) -> None:
        """Stop accepting, let open requests finish (up to a few seconds), remove the socket."""
        self._server.should_exit = True
        try:
            await self._task
        finally:
            self._unlink()

    def _unlink(self) -> None:
        # Only our own file: a successor may already have bound a new socket at this path.
        with contextlib.suppress(FileNotFoundError):
            if os.stat(self.path).st_ino == self._inode:
                self.path.unlink()


async def serve_unix(app: Any, path: Path) -> UnixServer:
    """Serve ``app`` on the unix socket ``path`` (mode 0600) from the current event loop.

    A stale socket file left by a dead daemon is replaced; a socket another process still
    answers on is refused (SocketInUse), and so is any other kind of file at ``path``."""
    path = Path(path)
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise PipeschedError(
            f"the API socket path {path} is longer than {MAX_SOCKET_PATH} bytes",
            hint="use a shorter state_dir",
        )
    await _clear_stale_socket(path)
    sock = _bind(path)
    config = uvicorn.Config(
        app,
        lifespan="off",  # a failed lifespan makes uvicorn call sys.exit
        log_config=None,  # logging is the daemon's (structlog); uvicorn must not reconfigure it
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
        server_header=False,
    )
    server = _EmbeddedServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name=f"api:{path}")
    listening = asyncio.create_task(server.listening.wait())
    try:
        await asyncio.wait({task, listening}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        listening.cancel()
    unix_server = UnixServer(server, task, path)
    if task.done():  # it ended before it listened: surface why
        sock.close()
        unix_server._unlink()
        task.result()
        raise PipeschedError(f"the API server on {path} stopped as it started")
    return unix_server


async def _clear_stale_socket(path: Path) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise PipeschedError(f"{path} exists and is not a socket", hint="move it out of the way")
    if await _answers(path):
        raise SocketInUse(
            f"another process answers on {path}", hint="is another pipesched daemon running?"
        )
    path.unlink()


async def _answers(path: Path) -> bool:
    """True when something accepts connections on the socket at ``path``."""
    try:
        with socket_address(path) as address:
            _, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(address), timeout=PROBE_TIMEOUT
            )
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except TimeoutError:
        return True  # a full backlog: alive but busy
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def _bind(path: Path) -> socket.socket:
    path.parent.mkdir(parents=True, exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with socket_address(path) as address:
            sock.bind(address)
    except BaseException:
        sock.close()  # EADDRINUSE: someone bound it since we looked; their file stays
        raise
    try:
        # chmod before listen(): until listen() nobody can connect, so no moment is open.
        os.chmod(path, SOCKET_MODE)
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        raise
    return sock
