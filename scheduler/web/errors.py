"""Error pages: what went wrong in the user's words (a PipeschedError's message and hint).

A page raises ``PageError`` (or ``not_found``) and the handler ``install_page_errors`` puts on
the app draws it, so a page's code reads as its happy path. The API's own handlers answer
JSON; these answer the browser."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from scheduler.core.errors import PipeschedError

if TYPE_CHECKING:
    from scheduler.web.view import WebView


class PageError(Exception):
    """A page that cannot be shown, or an action not done: its status, heading and cause."""

    def __init__(self, status_code: int, heading: str, error: Exception) -> None:
        super().__init__(heading)
        self.status_code, self.heading, self.error = status_code, heading, error


def not_found(heading: str, error: Exception) -> PageError:
    return PageError(404, heading, error)


def install_page_errors(app: FastAPI, view: WebView) -> None:
    async def draw(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        return error_page(view, request, exc)

    app.add_exception_handler(PageError, draw)


def error_page(view: WebView, request: Request, exc: PageError) -> HTMLResponse:
    error = exc.error
    hint = error.hint if isinstance(error, PipeschedError) else None
    message = error.message if isinstance(error, PipeschedError) else str(error)
    session = getattr(request.state, "session", None)  # the page's own check; no store read
    context = {"heading": exc.heading, "message": message, "hint": hint}
    return view.page(request, "error.html", context, status_code=exc.status_code, session=session)
