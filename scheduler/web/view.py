"""What every page of the web view shares: the daemon's handles, the session keeper, the
templates, and one way to answer with a page (security headers and the server's own time).

Pages are Jinja2 templates rendered on the server; the few live parts poll with a vendored
htmx, so the view needs no build step and loads nothing from outside the daemon.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from scheduler.core.clock import Clock
from scheduler.core.durations import format_duration

if TYPE_CHECKING:
    from scheduler.definitions.config import Config
    from scheduler.services.control import DaemonControl
    from scheduler.services.web_sessions import WebSession, WebSessions
    from scheduler.store import Store

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
LIVE_RUN_STATUSES = frozenset({"queued", "running"})

# Only the daemon's own origin: scripts, styles, images, forms and fetches. The SVG drawings
# are inline, htmx's indicator styles are turned off in the page's htmx-config.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass
class WebView:
    """One daemon's web view: its store, config and controls, and how it draws pages."""

    control: DaemonControl
    store: Store
    config: Config
    clock: Clock
    sessions: WebSessions
    secure: bool
    file_backlog: Callable[[], Mapping[str, int]] | None = None

    def __post_init__(self) -> None:
        self.templates = Jinja2Templates(directory=str(TEMPLATES))
        env = self.templates.env
        env.filters["duration"] = format_duration
        env.filters["when"] = self.when
        env.filters["short_id"] = short_id
        env.filters["metric"] = metric_text
        env.filters["clock"] = self.clock_time
        env.globals["live_statuses"] = LIVE_RUN_STATUSES

    def when(self, moment: datetime | None) -> str:
        """A time as pages show it: the daemon's local time to the second, with its offset."""
        if moment is None:
            return "-"
        return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S %z")

    def clock_time(self, moment: datetime | None) -> str:
        """The time of day alone, for times inside a run the page has dated already."""
        return "-" if moment is None else moment.astimezone().strftime("%H:%M:%S")

    def page(
        self,
        request: Request,
        template: str,
        context: dict[str, Any],
        *,
        status_code: int = 200,
        session: WebSession | None = None,
    ) -> HTMLResponse:
        """The template rendered for this request, with the security headers and a
        ``Server-Timing`` header giving the server's time for the whole request."""
        context = {"session": session, "path": request.url.path, **context}
        response = self.templates.TemplateResponse(
            request, template, context, status_code=status_code
        )
        response.headers.update(SECURITY_HEADERS)
        started = getattr(request.state, "started", None)
        if started is not None:
            elapsed_ms = (time.perf_counter() - started) * 1000
            response.headers["Server-Timing"] = f"app;dur={elapsed_ms:.1f}"
        return response


def short_id(run_id: str | None) -> str:
    """A run id as tables show it: long enough to be unique in practice and to paste."""
    return "-" if not run_id else run_id[:14]


def metric_text(value: Any) -> str:
    """A logged value as a table cell: numbers to 4 significant digits, a list by its length
    and last value, anything else shortened."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        if value and all(isinstance(item, dict) for item in value):
            return f"[{len(value)} rows]"
        return f"[{len(value)} values, last {metric_text(value[-1])}]" if value else "[]"
    text = str(value)
    return text if len(text) <= 40 else text[:39] + "…"


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())
