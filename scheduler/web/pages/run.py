"""A run's page: parameters, trigger, version and duration; the step timeline and the pipeline
graph (SVG drawn here); each step's attempts, reuse, metrics, outputs and models; a step's log
that follows while the step runs; and Cancel.

While the run is live, its status part refreshes every second and the log polls for new bytes
every half second: a line a step prints is on the page within a second.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from scheduler.core.errors import NotFound, PipeschedError
from scheduler.services import runs as run_service
from scheduler.services.logs import pick_attempt, read_log_window
from scheduler.services.run_graph import definition_edges, pipeline_steps
from scheduler.store.records import FINISHED_STEP_STATUSES, RunDetail, StepAttempt
from scheduler.web.access import PageSession, checked_form
from scheduler.web.drawing.graph import Node, graph_svg
from scheduler.web.drawing.timeline import Bar, timeline_svg
from scheduler.web.errors import PageError, not_found
from scheduler.web.view import LIVE_RUN_STATUSES, seconds_between

if TYPE_CHECKING:
    from scheduler.web.view import WebView

LOG_WINDOW = 256 * 1024  # the tail a page opens with; `pipesched logs` has the whole file
LOG_CHUNK = 256 * 1024  # at most this much new text per poll


@dataclass(frozen=True)
class StepRow:
    """A step as its row of the steps table shows it."""

    id: str
    display_name: str
    type: str
    status: str
    status_reason: str | None
    attempts: int
    exit_code: int | None
    started_at: datetime | None
    duration: float | None
    reused_from: str | None
    metrics: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    tries: tuple[str, ...] = ()  # each earlier attempt in words, when there were several


def run_routes(view: WebView) -> APIRouter:
    router = APIRouter()

    def load(run_id: str) -> RunDetail:
        try:
            return run_service.get_run(view.store, run_id[:64])
        except NotFound as exc:
            raise not_found("No such run", exc) from exc

    def live_context(detail: RunDetail, selected: str | None) -> dict[str, Any]:
        run = detail.run
        now = view.clock.now()
        latest = detail.latest_attempts()
        step_metrics = run_service.step_metrics(detail.metrics)
        tries: dict[str, int] = {}
        told: dict[str, list[str]] = {}
        for attempt in detail.attempts:
            if attempt.started_at is not None:
                tries[attempt.step] = tries.get(attempt.step, 0) + 1
                told.setdefault(attempt.step, []).append(_attempt_words(attempt))
        rows = [
            StepRow(
                id=name,
                display_name=a.display_name or name,
                type=a.type,
                status=str(a.status),
                status_reason=a.status_reason,
                attempts=tries.get(name, 0),
                exit_code=a.exit_code,
                started_at=a.started_at,
                duration=seconds_between(a.started_at, a.finished_at or now),
                reused_from=a.reused_from,
                metrics=step_metrics.get(name, {}),
                outputs=dict(a.outputs),
                tries=tuple(told.get(name, ())) if tries.get(name, 0) > 1 else (),
            )
            for name, a in latest.items()
        ]
        definition = view.store.pipeline_definition(run.pipeline, run.content_hash)
        declared = pipeline_steps(definition)
        names = {step for step, _ in declared}
        nodes = [
            Node(
                step,
                label,
                str(latest[step].status) if step in latest else "pending",
                _log_href(run.id, step),
            )
            for step, label in declared
        ] + [
            Node(name, a.display_name or name, str(a.status), _log_href(run.id, name))
            for name, a in latest.items()
            if name not in names
        ]
        origin = run.created_at

        def offset(moment: datetime | None) -> float | None:
            return None if moment is None else max(0.0, (moment - origin).total_seconds())

        bars = [
            Bar(
                step=name,
                status=str(a.status),
                start=offset(a.started_at),
                end=offset(a.finished_at),
                href=_log_href(run.id, name),
                label=a.display_name or name,
            )
            for name, a in latest.items()
        ]
        live = str(run.status) in LIVE_RUN_STATUSES
        end = run.finished_at or (now if run.started_at is not None else None)
        return {
            "run": run,
            "status_text": run_service.status_text(run),
            "live": live,
            "duration": seconds_between(run.started_at, end),
            "steps": rows,
            "selected": selected,
            "timeline": timeline_svg(bars, now=(now - origin).total_seconds()),
            "graph": graph_svg(nodes, definition_edges(definition)),
            "live_url": f"/runs/{run.id}/live?" + urlencode({"step": selected or ""}),
        }

    def log_context(detail: RunDetail, selected: str | None) -> dict[str, Any]:
        if selected is None:
            return {"log": None}
        attempt = pick_attempt(detail, selected, None)
        window = read_log_window(attempt, None, LOG_WINDOW)
        following = _following(detail, attempt)
        end = window.end if not following else window.start + _whole_chars(window.data)
        return {
            "log": {
                "step": selected,
                "attempt": attempt.attempt,
                "status": str(attempt.status),
                "text": window.data[: end - window.start].decode("utf-8", "replace"),
                "cut": window.cut,
                "reused_from": attempt.reused_from,
                "following": following,
                "poll_url": _poll_url(detail.run.id, selected, attempt.attempt, end),
            }
        }

    @router.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_page(request: Request, run_id: str, session: PageSession) -> Response:
        detail = load(run_id)
        selected = _selected_step(detail, request.query_params.get("step"))
        context = (
            live_context(detail, selected)
            | log_context(detail, selected)
            | {"models": run_service.run_models(view.store, detail.run.id)}
        )
        return view.page(request, "run.html", context, session=session)

    @router.get("/runs/{run_id}/live", response_class=HTMLResponse)
    def run_live(request: Request, run_id: str, session: PageSession) -> Response:
        """The status part of the page alone, for its refresh."""
        detail = load(run_id)
        selected = _selected_step(detail, request.query_params.get("step"))
        return view.page(request, "_run_live.html", live_context(detail, selected), session=session)

    @router.get("/runs/{run_id}/log-section", response_class=HTMLResponse)
    def run_log_section(request: Request, run_id: str, session: PageSession) -> Response:
        """The log part of the page, polled while the run has no step to show yet."""
        detail = load(run_id)
        selected = _selected_step(detail, None)
        context = log_context(detail, selected) | {
            "run": detail.run,
            "live": str(detail.run.status) in LIVE_RUN_STATUSES,
        }
        return view.page(request, "_log.html", context, session=session)

    @router.get("/runs/{run_id}/log", response_class=HTMLResponse)
    def run_log(request: Request, run_id: str, session: PageSession) -> Response:
        """New log bytes from ``offset`` on, appended to the page's log, and the next poll."""
        detail = load(run_id)
        step = request.query_params.get("step") or ""
        try:
            attempt = pick_attempt(detail, step, None)
        except NotFound as exc:
            raise not_found("No such step", exc) from exc
        if str(attempt.attempt) != request.query_params.get("attempt"):
            return Response(status_code=204, headers={"HX-Refresh": "true"})  # a retry began
        following = _following(detail, attempt)
        window = read_log_window(attempt, _int(request.query_params.get("offset")), LOG_CHUNK)
        keep = _whole_chars(window.data) if following else len(window.data)
        context = {
            "text": window.data[:keep].decode("utf-8", "replace"),
            "following": following or keep < len(window.data),
            "poll_url": _poll_url(detail.run.id, step, attempt.attempt, window.start + keep),
        }
        return view.page(request, "_log_poll.html", context, session=session)

    @router.post("/runs/{run_id}/cancel")
    async def cancel(request: Request, run_id: str, session: PageSession) -> Response:
        await checked_form(request, session)
        detail = await asyncio.to_thread(load, run_id)
        try:
            await view.control.cancel_run(detail.run.id)
        except NotFound as exc:
            raise not_found("No such run", exc) from exc
        except PipeschedError as exc:
            raise PageError(409, "The run was not canceled", exc) from exc
        return RedirectResponse(f"/runs/{quote(detail.run.id)}", status_code=303)

    return router


def _selected_step(detail: RunDetail, wanted: str | None) -> str | None:
    """The step whose log the page shows: the asked one, else a running one, else the last
    that started, else the first."""
    latest = detail.latest_attempts()
    if wanted and wanted in latest:
        return wanted
    running = [name for name, a in latest.items() if str(a.status) == "running"]
    if running:
        return running[0]
    started = [a for a in latest.values() if a.started_at is not None]
    if started:
        return max(started, key=lambda a: a.started_at or detail.run.created_at).step
    return next(iter(latest), None)


def _attempt_words(attempt: StepAttempt) -> str:
    """``2: failed, exit 1 (timeout)``: one attempt as the steps table lists it."""
    words = f"{attempt.attempt}: {attempt.status}"
    if attempt.exit_code is not None:
        words += f", exit {attempt.exit_code}"
    if attempt.status_reason:
        words += f" ({attempt.status_reason})"
    return words


def _following(detail: RunDetail, attempt: StepAttempt) -> bool:
    """Whether more of this attempt's log may come."""
    if str(detail.run.status) not in LIVE_RUN_STATUSES:
        return False
    return str(attempt.status) not in FINISHED_STEP_STATUSES


def _whole_chars(data: bytes) -> int:
    """How much of ``data`` ends on a whole UTF-8 character: a character split between two
    reads waits for the next one instead of showing as two replacement marks."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return len(data)
        if byte >= 0xC0:  # a lead byte: is its sequence complete?
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return len(data) if back >= need else len(data) - back
    return len(data)


def _log_href(run_id: str, step: str) -> str:
    return f"/runs/{quote(run_id)}?{urlencode({'step': step})}#log"


def _poll_url(run_id: str, step: str, attempt: int, offset: int) -> str:
    query = urlencode({"step": step, "attempt": attempt, "offset": offset})
    return f"/runs/{quote(run_id)}/log?{query}"


def _int(value: str | None) -> int | None:
    try:
        return max(0, int(value)) if value is not None else None
    except ValueError:
        return None
