"""Who may see the pages: a session cookie made at the login form, checked on every page, and
a CSRF token on every request that changes something.

A page without a session sends the browser to ``/login`` (an htmx poll gets ``HX-Redirect``
instead, so a fragment never turns into a login form). A state-changing request needs the
session's CSRF token in its form (``csrf``) or in ``X-CSRF-Token``, and, when the browser
says where it comes from, an ``Origin`` equal to the daemon's own.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from scheduler.services.web_sessions import SESSION_COOKIE, WebSession

if TYPE_CHECKING:
    from scheduler.web.view import WebView

MAX_FORM_BYTES = 16 * 1024  # a login or a button press; the API's body limit applies first
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


class LoginRequired(Exception):
    """No live session: the browser is sent to the login form, back to ``next`` afterwards."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def install_login_redirect(app: FastAPI) -> None:
    """Answer ``LoginRequired`` with a redirect to the login form."""

    async def to_login(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        target = f"/login?next={quote(exc.next_path, safe='/')}"
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    app.add_exception_handler(LoginRequired, to_login)


def current_session(request: Request) -> WebSession:
    """The request's session, or ``LoginRequired``. It also marks when the request began, for
    the page's ``Server-Timing``."""
    request.state.started = time.perf_counter()
    view: WebView = request.app.state.web_view
    session = view.sessions.check(request.cookies.get(SESSION_COOKIE))
    if session is None:
        wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(local_path(wanted))
    request.state.session = session
    return session


# A page's parameter for its session; a module-level alias, so FastAPI resolves it.
PageSession = Annotated[WebSession, Depends(current_session)]


async def read_form(request: Request) -> dict[str, str]:
    """A small url-encoded form, one value per field (the first); 413 past ``MAX_FORM_BYTES``.
    The standard library parses it: a form of a few fields needs no multipart parser."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, "the form is too large")
    fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=50)
    return {name: values[0] for name, values in fields.items() if values}


def check_origin(request: Request) -> None:
    """403 when the browser says the request comes from another site."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    if urlsplit(origin).netloc != request.headers.get("host", ""):
        raise HTTPException(403, "this request comes from another site")


async def checked_form(request: Request, session: WebSession) -> dict[str, str]:
    """The form of a state-changing request, after its origin and CSRF token are checked."""
    check_origin(request)
    form = await read_form(request)
    presented = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    if not session.csrf_matches(presented):
        raise HTTPException(403, "the form's CSRF token is missing or stale: reload the page")
    return form


def local_path(target: str | None, default: str = "/runs") -> str:
    """``target`` when it is a path on this server, else ``default``: a login never sends the
    browser to another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target
