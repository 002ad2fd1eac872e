"""The schedules page: each schedule's kind, its expression in plain English and its zone,
its next fire times, its last run; enable, disable and trigger. A schedule's own page adds
its fire records with their reasons and, for a file-drop schedule, the watched folder, the
files pending and the last files handled."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from scheduler.core.errors import NotFound, PipeschedError
from scheduler.services import runs as run_service
from scheduler.services.schedules import get_schedule, list_fires, list_schedules
from scheduler.web.access import PageSession, checked_form, local_path
from scheduler.web.errors import PageError, not_found

if TYPE_CHECKING:
    from scheduler.web.view import WebView

NEXT_SHOWN = 3
FIRES_SHOWN = 50
FILES_SHOWN = 20
RUNS_SHOWN = 10
ACTIONS = ("enable", "disable", "trigger")


def schedule_routes(view: WebView) -> APIRouter:
    router = APIRouter()

    @router.get("/schedules", response_class=HTMLResponse)
    def schedules_page(request: Request, session: PageSession) -> HTMLResponse:
        summaries = list_schedules(view.config, view.store, view.clock.now())
        backlog = dict(view.file_backlog()) if view.file_backlog else {}
        context = {"schedules": summaries, "next_shown": NEXT_SHOWN, "backlog": backlog}
        return view.page(request, "schedules.html", context, session=session)

    @router.get("/schedules/{name}", response_class=HTMLResponse)
    def schedule_page(request: Request, name: str, session: PageSession) -> Response:
        try:
            summary = get_schedule(view.config, view.store, name, view.clock.now())
        except NotFound as exc:
            raise not_found("No such schedule", exc) from exc
        fires = list_fires(view.store, summary.name, limit=FIRES_SHOWN, config=view.config)
        context: dict[str, Any] = {
            "s": summary,
            "fires": fires,
            "runs": run_service.list_runs(view.store, schedule=summary.name, limit=RUNS_SHOWN),
            "next_shown": 10,
        }
        if summary.watch is not None:
            context["pending"] = [key.path for key in view.store.claimed_files(summary.name)]
            context["waiting"] = (dict(view.file_backlog()) if view.file_backlog else {}).get(
                summary.name, 0
            )
            context["handled"] = [f for f in fires if f.path][:FILES_SHOWN]
        return view.page(request, "schedule.html", context, session=session)

    @router.post("/schedules/{name}/{action}")
    async def act(request: Request, name: str, action: str, session: PageSession) -> Response:
        form = await checked_form(request, session)
        back = local_path(form.get("next"), "/schedules")
        try:
            if action == "trigger":
                await view.control.trigger_schedule(name)
            elif action in ("enable", "disable"):
                await view.control.set_schedule_enabled(name, action == "enable")
            else:
                raise NotFound(f"no action {action!r}", hint="enable, disable or trigger")
        except NotFound as exc:
            raise not_found("Not done", exc) from exc
        except PipeschedError as exc:
            raise PageError(409, "Not done", exc) from exc
        return RedirectResponse(back, status_code=303)

    return router
