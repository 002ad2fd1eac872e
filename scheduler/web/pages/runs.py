"""The runs page: newest first, filtered by pipeline, status, schedule, trigger and
experiment, paged by run id; its rows refresh while the page is open on the newest runs or
while a listed run is live."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from scheduler.services import runs as run_service
from scheduler.web.access import PageSession
from scheduler.web.view import LIVE_RUN_STATUSES, seconds_between

if TYPE_CHECKING:
    from scheduler.store.records import RunRecord
    from scheduler.web.view import WebView

PAGE_SIZE = 50
MAX_FILTER = 200
STATUSES = ("queued", "running", "completed", "failed", "canceled")
TRIGGER_KINDS = ("manual", "api", "schedule", "file", "files")


@dataclass(frozen=True)
class RunRow:
    """A run as one row of the table."""

    id: str
    pipeline: str
    version: str | None
    status: str
    status_text: str
    status_reason: str | None
    trigger: str
    created_at: datetime
    duration: float | None
    experiment: str

    @classmethod
    def of(cls, run: RunRecord, now: datetime) -> RunRow:
        end = run.finished_at or (now if run.started_at is not None else None)
        return cls(
            run.id,
            run.pipeline,
            run.version,
            str(run.status),
            run_service.status_text(run),
            run.status_reason,
            run.trigger,
            run.created_at,
            seconds_between(run.started_at, end),
            run.experiment,
        )


@dataclass(frozen=True)
class RunFilters:
    pipeline: str | None = None
    status: str | None = None
    schedule: str | None = None
    trigger: str | None = None
    experiment: str | None = None

    @classmethod
    def of(cls, request: Request) -> RunFilters:
        """The filters in the query; empty or unknown values mean no filter."""
        query = request.query_params

        def text(name: str) -> str | None:
            value = (query.get(name) or "").strip()
            return value[:MAX_FILTER] or None

        status = text("status")
        return cls(
            pipeline=text("pipeline"),
            status=status if status in STATUSES else None,
            schedule=text("schedule"),
            trigger=text("trigger"),
            experiment=text("experiment"),
        )

    def query(self, **more: str) -> str:
        fields = {k: v for k, v in vars(self).items() if v} | more
        return urlencode(fields)


def runs_routes(view: WebView) -> APIRouter:
    router = APIRouter()

    def listed(request: Request) -> tuple[RunFilters, str | None, list[RunRow]]:
        filters = RunFilters.of(request)
        before = (request.query_params.get("before") or "").strip()[:64] or None
        records = run_service.list_runs(
            view.store,
            pipeline=filters.pipeline,
            statuses=(filters.status,) if filters.status else (),
            schedule=filters.schedule,
            trigger=filters.trigger,
            experiment=filters.experiment,
            before=before,
            limit=PAGE_SIZE + 1,
        )
        now = view.clock.now()
        return filters, before, [RunRow.of(r, now) for r in records]

    def rows_context(filters: RunFilters, before: str | None, rows: list[RunRow]) -> dict:
        shown = rows[:PAGE_SIZE]
        live = any(r.status in LIVE_RUN_STATUSES for r in shown)
        extra = {"before": before} if before else {}
        return {
            "rows": shown,
            "poll": before is None or live,
            "rows_url": "/runs/rows?" + filters.query(**extra),
        }

    @router.get("/runs", response_class=HTMLResponse)
    def runs_page(request: Request, session: PageSession) -> HTMLResponse:
        filters, before, rows = listed(request)
        older = rows[PAGE_SIZE - 1].id if len(rows) > PAGE_SIZE else None
        context = rows_context(filters, before, rows) | {
            "filters": filters,
            "filtered": any(vars(filters).values()),
            "statuses": STATUSES,
            "triggers": TRIGGER_KINDS,
            "before": before,
            "older_url": f"/runs?{filters.query(before=older)}" if older else None,
            "newest_url": f"/runs?{filters.query()}",
        }
        return view.page(request, "runs.html", context, session=session)

    @router.get("/runs/rows", response_class=HTMLResponse)
    def runs_rows(request: Request, session: PageSession) -> HTMLResponse:
        """The table's rows alone, for the page's refresh."""
        filters, before, rows = listed(request)
        return view.page(
            request, "_runs_rows.html", rows_context(filters, before, rows), session=session
        )

    return router
