"""The pipelines page and a pipeline's own: its versions and default, the endpoint URL, the
graph (coloured by its newest run), a chart of one metric across its last runs, and its
schedules with the runs each started."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from scheduler.core.errors import NotFound
from scheduler.services import pipelines as pipeline_service
from scheduler.services import runs as run_service
from scheduler.services.run_graph import pipeline_steps, run_edges, working_copy_graph
from scheduler.services.schedules import list_schedules
from scheduler.web.access import PageSession
from scheduler.web.drawing.chart import Point, metric_chart_svg
from scheduler.web.drawing.graph import Node, graph_svg
from scheduler.web.errors import not_found

if TYPE_CHECKING:
    from scheduler.services.pipelines import PipelineEntry
    from scheduler.web.view import WebView

DEFAULT_LAST = 20
MAX_LAST = 500
RUNS_PER_SCHEDULE = 5


def pipeline_routes(view: WebView) -> APIRouter:
    router = APIRouter()

    @router.get("/pipelines", response_class=HTMLResponse)
    def pipelines_page(request: Request, session: PageSession) -> HTMLResponse:
        rows = []
        for entry in pipeline_service.list_pipelines(view.config, view.store):
            newest = run_service.list_runs(view.store, pipeline=entry.name, limit=1)
            fields = pipeline_service.entry_fields(view.config, entry)
            rows.append(
                {"entry": entry, "fields": fields, "last_run": newest[0] if newest else None}
            )
        return view.page(request, "pipelines.html", {"rows": rows}, session=session)

    @router.get("/pipelines/{name}", response_class=HTMLResponse)
    def pipeline_page(request: Request, name: str, session: PageSession) -> Response:
        entry = _find(view, name)
        if entry is None:
            error = NotFound(f"no pipeline named {name!r}", hint="the Pipelines page lists them")
            raise not_found("No such pipeline", error)
        last = _bounded(request.query_params.get("last"), DEFAULT_LAST, 1, MAX_LAST)
        history = run_service.metric_history(view.store, entry.name, last=last)
        names = _metric_names(history)
        wanted = (request.query_params.get("metric") or "").strip()
        metric = wanted if wanted in names else (names[0] if names else wanted or None)
        points = _points(history, metric) if metric else []
        chart = metric_chart_svg(metric, points) if metric else None
        schedules = [
            s
            for s in list_schedules(view.config, view.store, view.clock.now())
            if s.pipeline.split("@")[0] == entry.name
        ]
        schedule_runs = {
            s.name: run_service.list_runs(view.store, schedule=s.name, limit=RUNS_PER_SCHEDULE)
            for s in schedules
        }
        context: dict[str, Any] = {
            "entry": entry,
            "fields": pipeline_service.entry_fields(view.config, entry),
            "graph": _graph(view, entry),
            "metric": metric,
            "metric_names": names,
            "last": last,
            "chart": chart,
            "schedules": schedules,
            "schedule_runs": schedule_runs,
        }
        return view.page(request, "pipeline.html", context, session=session)

    return router


def _find(view: WebView, name: str) -> PipelineEntry | None:
    for entry in pipeline_service.list_pipelines(view.config, view.store):
        if entry.name == name:
            return entry
    return None


def _graph(view: WebView, entry: PipelineEntry) -> Any:
    """The working copy's graph (else the default version's), each step coloured by the
    pipeline's newest run, and linked to that step in it."""
    newest = run_service.list_runs(view.store, pipeline=entry.name, limit=1)
    detail = run_service.get_run(view.store, newest[0].id) if newest else None
    statuses = (
        {name: str(a.status) for name, a in detail.latest_attempts().items()} if detail else {}
    )
    loaded = working_copy_graph(view.config, entry.path) if entry.path is not None else None
    if loaded is not None:
        steps, edges = loaded
    else:
        default = next((v for v in entry.versions if v.is_default), None)
        content = default.content_hash if default else (detail.run.content_hash if detail else "")
        definition = view.store.pipeline_definition(entry.name, content)
        steps, edges = pipeline_steps(definition), run_edges(view.store, entry.name, content)
    run_id = detail.run.id if detail else None
    nodes = [
        Node(
            step,
            label,
            statuses.get(step, "pending"),
            f"/runs/{quote(run_id)}?{urlencode({'step': step})}#log" if run_id else None,
        )
        for step, label in steps
    ]
    return graph_svg(nodes, edges)


def _metric_names(history: list[run_service.MetricHistoryRow]) -> list[str]:
    """The names of numeric metrics any of these runs logged, in the order first seen."""
    names: dict[str, None] = {}
    for row in history:
        for logged in row.metrics.values():
            for name, value in logged.items():
                if _number(value) is not None:
                    names.setdefault(name, None)
    return list(names)


def _points(history: list[run_service.MetricHistoryRow], metric: str) -> list[Point]:
    """One point per run that logged ``metric`` (its first step that did, by id), oldest
    first; a list metric counts by its last value."""
    points = []
    for row in reversed(history):
        for step in sorted(row.metrics):
            value = _number(row.metrics[step].get(metric))
            if value is not None:
                points.append(
                    Point(
                        run_id=row.id,
                        label=row.created_at.astimezone().strftime("%m-%d %H:%M:%S"),
                        value=value,
                        href=f"/runs/{quote(row.id)}",
                        status=row.status,
                    )
                )
                break
    return points


def _number(value: Any) -> float | None:
    if isinstance(value, list) and value:
        value = value[-1]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number  # NaN and infinities too: the chart says how many it could not draw


def _bounded(text: str | None, default: int, low: int, high: int) -> int:
    try:
        return min(high, max(low, int(text))) if text else default
    except ValueError:
        return default
