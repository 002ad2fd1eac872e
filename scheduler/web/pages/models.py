"""The models page: every registered model's versions, newest first, with the run and step
each came from."""

from __future__ import annotations

from itertools import groupby
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from scheduler.services.models import list_models
from scheduler.web.access import PageSession

if TYPE_CHECKING:
    from scheduler.web.view import WebView

MAX_VERSIONS = 1000


def model_routes(view: WebView) -> APIRouter:
    router = APIRouter()

    @router.get("/models", response_class=HTMLResponse)
    def models_page(request: Request, session: PageSession) -> HTMLResponse:
        records = sorted(list_models(view.store), key=lambda m: (m.name, -m.version))
        shown = records[:MAX_VERSIONS]
        models = [(name, list(group)) for name, group in groupby(shown, key=lambda m: m.name)]
        context = {"models": models, "cut": len(records) > MAX_VERSIONS}
        return view.page(request, "models.html", context, session=session)

    return router
