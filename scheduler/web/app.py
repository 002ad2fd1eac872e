"""The web view installed on the daemon's API app: the pages, their static files (htmx and
the style sheets, from the package), sessions and the login redirect. The daemon calls
``install_web_view`` on its TCP listener's app; the unix socket serves no pages."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from scheduler.core.clock import SYSTEM_CLOCK, Clock
from scheduler.services.web_sessions import WebSessions
from scheduler.web.access import install_login_redirect
from scheduler.web.errors import install_page_errors
from scheduler.web.pages.login import login_routes
from scheduler.web.pages.models import model_routes
from scheduler.web.pages.pipelines import pipeline_routes
from scheduler.web.pages.run import run_routes
from scheduler.web.pages.runs import runs_routes
from scheduler.web.pages.schedules import schedule_routes
from scheduler.web.view import STATIC, WebView

if TYPE_CHECKING:
    from scheduler.definitions.config import Config
    from scheduler.services.control import DaemonControl
    from scheduler.store import Store


def install_web_view(
    app: FastAPI,
    control: DaemonControl,
    store: Store,
    config: Config,
    *,
    clock: Clock = SYSTEM_CLOCK,
    file_backlog: Callable[[], Mapping[str, int]] | None = None,
) -> WebView:
    """Serve the web view under ``/`` on ``app`` (paths the API does not use)."""
    view = WebView(
        control,
        store,
        config,
        clock,
        WebSessions(store, config.state_dir),
        secure=config.api.tls is not None,
        file_backlog=file_backlog,
    )
    app.state.web_view = view
    install_login_redirect(app)
    install_page_errors(app, view)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for routes in (
        login_routes,
        runs_routes,
        run_routes,
        pipeline_routes,
        schedule_routes,
        model_routes,
    ):
        app.include_router(routes(view), include_in_schema=False)
    return view
