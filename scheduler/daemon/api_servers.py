"""The daemon's two listeners: the control socket (no token: its 0600 mode is the guard) and
the TCP listener (every ``/api/`` path needs a bearer token, and the web view is served there).
A leader and a standby start them alike, with their own controls."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from scheduler.api.app import create_app
from scheduler.api.server import serve_unix
from scheduler.api.tcp import serve_tcp
from scheduler.core.clock import Clock
from scheduler.services.daemon_http import socket_path
from scheduler.web.app import install_web_view

if TYPE_CHECKING:
    from scheduler.definitions.config import Config
    from scheduler.services.control import DaemonControl
    from scheduler.store import Store

log = structlog.get_logger("scheduler.daemon.lifecycle")


async def start_api(
    config: Config,
    controls: DaemonControl,
    store: Store,
    clock: Clock,
    file_backlog: Callable[[], dict[str, int]] | None,
    forward_to: Callable[[], str | None] | None = None,
) -> list[Any]:
    """``[tcp, unix]``, both listening; ``forward_to`` (a standby's) hands changes to the
    leader on the TCP listener."""

    def app(require_token: bool) -> Any:
        served = create_app(
            controls,
            store,
            config,
            require_token=require_token,
            clock=clock,
            file_backlog=file_backlog,
            forward_to=forward_to if require_token else None,
        )
        if require_token:  # the web view: on the TCP listener, behind its login
            install_web_view(
                served, controls, store, config, clock=clock, file_backlog=file_backlog
            )
        return served

    unix = await serve_unix(app(False), socket_path(config.state_dir))
    try:
        tcp = await serve_tcp(app(True), config)
    except BaseException:
        await unix.stop()
        raise
    log.info("api_listening", url=tcp.url, socket=str(socket_path(config.state_dir)))
    return [tcp, unix]
