"""The daemon's whole API as one FastAPI app: the control paths, the REST API,
``/healthz``, ``/metrics``, ``/openapi.json`` and ``/docs``.

The same app serves both listeners: on the unix socket ``require_token=False`` (the socket's
mode 0600 is the guard), on TCP every ``/api/`` path needs a bearer token. ``/healthz``,
``/metrics`` and the OpenAPI document stay open, as only ``/api/`` paths need a token; put the
TCP listener behind TLS or on loopback (the default) to keep run counts private.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI, Request, Response

from scheduler.api.auth import token_dependency
from scheduler.api.control import (
    DaemonControl,
    control_router,
    health_route,
    install_error_handlers,
)
from scheduler.api.datastore_routes import datastore_router
from scheduler.api.docs_page import install_docs
from scheduler.api.documented import (
    document_statuses,
    install_method_not_allowed,
    install_validation_answers,
    single_query_values,
)
from scheduler.api.forward import ForwardChanges
from scheduler.api.limits import BodyLimit
from scheduler.api.metrics import make_registry, metrics_response, schedule_next_fires
from scheduler.api.notebook_routes import notebook_router
from scheduler.api.rest import rest_router
from scheduler.api.state_bytes import StateBytesCollector
from scheduler.core.clock import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    from scheduler.definitions.config import Config
    from scheduler.store import Store


OPENAPI_URL = "/openapi.json"


def create_app(
    control: DaemonControl,
    store: Store,
    config: Config,
    *,
    require_token: bool,
    clock: Clock = SYSTEM_CLOCK,
    file_backlog: Callable[[], Mapping[str, int]] | None = None,
    forward_to: Callable[[], str | None] | None = None,
) -> FastAPI:
    """The API bound to one daemon, its store and config. ``file_backlog`` (schedule → files
    waiting) feeds ``/metrics`` once the file-drop trigger offers it. ``forward_to`` (a
    standby's) gives the leader's API URL: changes are handed on to it."""
    app = FastAPI(
        title="pipesched",
        summary="pipesched daemon API: run pipelines the way Azure ML published endpoints do",
        version="1",
        docs_url=None,  # install_docs serves it from the package's own files
        redoc_url=None,
        openapi_url=OPENAPI_URL,
    )
    install_docs(app, OPENAPI_URL)
    install_error_handlers(app)
    app.add_middleware(
        BodyLimit,
        max_body_bytes=config.api.max_body_bytes,
        max_upload_bytes=config.api.max_upload_bytes,
    )
    if forward_to is not None:
        app.add_middleware(
            ForwardChanges, leader_url=forward_to, max_body=config.api.max_body_bytes
        )
    health_route(app, control)
    guard = [
        Depends(token_dependency(store, require_token=require_token)),
        Depends(single_query_values),
    ]
    app.include_router(control_router(control, store), dependencies=guard)
    app.include_router(rest_router(control, store, config, clock), dependencies=guard)
    app.include_router(datastore_router(config), dependencies=guard)
    app.include_router(notebook_router(control, store, config), dependencies=guard)
    registry = make_registry(
        store,
        file_backlog,
        config.state_dir,
        next_fires=schedule_next_fires(config, store, clock),
        clock=clock,
        health=control.health,
    )
    registry.register(StateBytesCollector(config, store))

    # A plain def: the scrape reads the database in FastAPI's thread pool, not the loop.
    @app.get("/metrics", tags=["health"], response_class=Response)
    def metrics(request: Request) -> Response:
        body, content_type = metrics_response(registry, request.headers.get("accept"))
        return Response(body, media_type=content_type)

    install_method_not_allowed(app)
    install_validation_answers(app)
    document_statuses(app)
    return app
