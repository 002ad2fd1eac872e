"""Error pages: what went wrong in the user's words (a PipeschedError's message and hint)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request
from fastapi.responses import HTMLResponse

from scheduler.core.errors import PipeschedError

if TYPE_CHECKING:
    from scheduler.services.web_sessions import WebSession
    from scheduler.web.view import WebView


def error_page(
    view: WebView,
    request: Request,
    session: WebSession | None,
    status_code: int,
    heading: str,
    error: Exception,
) -> HTMLResponse:
    hint = error.hint if isinstance(error, PipeschedError) else None
    message = error.message if isinstance(error, PipeschedError) else str(error)
    context = {"heading": heading, "message": message, "hint": hint}
    return view.page(request, "error.html", context, status_code=status_code, session=session)
