"""Logging in and out: the login form takes an API token and answers with a session cookie
(HttpOnly, SameSite=Strict, Secure under TLS); the token itself never reaches a URL."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from scheduler.services.web_sessions import SESSION_COOKIE, SESSION_SECONDS
from scheduler.web.access import PageSession, check_origin, checked_form, local_path, read_form

if TYPE_CHECKING:
    from scheduler.web.view import WebView

MAX_TOKEN = 200


def login_routes(view: WebView) -> APIRouter:
    router = APIRouter()

    def form(request: Request, next_path: str, error: str | None, status: int) -> HTMLResponse:
        context = {"next": next_path, "error": error, "hours": SESSION_SECONDS // 3600}
        return view.page(request, "login.html", context, status_code=status)

    @router.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/runs", status_code=303)

    @router.get("/login", response_class=HTMLResponse)
    def login_form(request: Request) -> HTMLResponse:
        request.state.started = time.perf_counter()
        return form(request, local_path(request.query_params.get("next")), None, 200)

    @router.post("/login", response_class=HTMLResponse)
    async def log_in(request: Request) -> Response:
        request.state.started = time.perf_counter()
        check_origin(request)
        fields = await read_form(request)
        next_path = local_path(fields.get("next"))
        token = fields.get("token", "")[:MAX_TOKEN]
        cookie = await asyncio.to_thread(view.sessions.log_in, token) if token else None
        if cookie is None:
            error = "That token is not valid: it is wrong, or it has been revoked."
            return form(request, next_path, error, 401)
        answer = RedirectResponse(next_path, status_code=303)
        answer.set_cookie(
            SESSION_COOKIE,
            cookie,
            max_age=view.sessions.max_age,
            path="/",
            httponly=True,
            samesite="strict",
            secure=view.secure,
        )
        return answer

    @router.post("/logout")
    async def log_out(request: Request, session: PageSession) -> Response:
        await checked_form(request, session)
        answer = RedirectResponse("/login", status_code=303)
        answer.delete_cookie(
            SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=view.secure
        )
        return answer

    return router
