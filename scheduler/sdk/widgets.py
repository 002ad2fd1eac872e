"""Azure ML's ``RunDetails`` (``azureml.widgets``): a run's steps with their status, duration
and log, kept up to date until the run ends.

Where it shows depends on where ``show()`` is called, as on Azure:

- in a Jupyter kernel with ipywidgets: a widget, refreshed by a background thread, and
  ``show()`` returns at once so the cell does not block;
- in a Jupyter kernel without ipywidgets: HTML output, updated in place through its display
  handle by the same kind of thread; ``show()`` returns at once;
- anywhere else (a script, a terminal IPython): one progress line per step status change, and
  ``show()`` returns when the run ends. Azure refreshes synchronously outside Jupyter too;
- with ``render_lib`` (Databricks' ``displayHTML``): the HTML handed to it at each refresh,
  returning when the run ends.

IPython and ipywidgets are optional: neither is imported until ``show()`` finds a kernel.
"""

from __future__ import annotations

import html
import importlib
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from scheduler.core.errors import NotFound, PipeschedError
from scheduler.sdk._warn import SdkError, ignored
from scheduler.sdk.remote import RemoteBackend
from scheduler.sdk.runs import PipelineRun, StepRun
from scheduler.sdk.watch import (
    FINAL,
    FINISHED_STEP,
    POLL_FIRST,
    POLL_GROWTH,
    POLL_MAX,
    STATUS_CODES,
    STEP_STATUS_CODES,
)
from scheduler.services.logs import pick_attempt

# A daemon restarting, or a store briefly locked, is not the end of the run: reads are retried
# this long before the view gives up and says why.
RETRY_SECONDS = 60.0

_COLOURS = {
    "NotStarted": "#6b7280",
    "Running": "#2563eb",
    "Finished": "#15803d",
    "Failed": "#b91c1c",
    "Canceled": "#b45309",
}


@dataclass(frozen=True)
class StepView:
    """One step as the view shows it."""

    step: str  # the step id
    name: str  # its display name
    status: str  # Azure's word
    pipesched_status: str  # pipesched's own word (tells reused and skipped apart)
    started_at: str | None  # ISO, UTC
    duration: float | None  # seconds; so far, while it runs
    log: str | None  # the log file on this machine, or the daemon's URL of it
    reused_from: str | None


@dataclass(frozen=True)
class RunView:
    """What one read of the run gives: the run and the steps shown."""

    run_id: str
    experiment: str
    status: str  # Azure's word for the run
    duration: float | None
    steps: tuple[StepView, ...]
    step_run: str | None  # the step's id when a StepRun is shown
    final: bool  # nothing shown will change any more

    def changes(self) -> tuple[object, ...]:
        """Everything but the clock: a view whose changes differ is news."""
        return (self.status, tuple((s.step, s.status, s.log) for s in self.steps))


class RunDetails:
    """``RunDetails(run).show()``: a view of a ``PipelineRun`` or a ``StepRun`` that follows it
    until it ends."""

    def __init__(self, run_instance: PipelineRun | StepRun) -> None:
        if not isinstance(run_instance, PipelineRun | StepRun):
            raise SdkError(
                f"RunDetails shows a PipelineRun or a StepRun, not {type(run_instance).__name__}",
                hint="pass the run that Experiment.submit returned, or one of its get_steps()",
            )
        self.run_instance = run_instance
        self.widget_instance: Any = None  # the ipywidgets widget, once shown with one
        self._refresher: threading.Thread | None = None
        self._log_paths: dict[tuple[str, int], str | None] = {}

    # -- Azure's API --------------------------------------------------------------------------

    def show(
        self, render_lib: Callable[[str], Any] | None = None, widget_settings: Any = None
    ) -> None:
        """Show the run and follow it: in Jupyter in the background (returns at once), elsewhere
        as progress lines until the run ends. ``render_lib(html)`` renders each refresh
        instead (Databricks' ``displayHTML``), also until the run ends."""
        if widget_settings:
            ignored("RunDetails.show", "widget_settings", "the view has no settings")
        if render_lib is not None:
            self._render_until_done(render_lib)
            return
        shell = _kernel_shell()
        if shell is None:
            self._print_progress()
            return
        widgets = _ipywidgets()
        if widgets is not None:
            self._show_widget(widgets)
        else:
            self._show_html()

    def get_widget_data(self, widget_settings: Any = None) -> dict[str, Any]:
        """What the view shows right now, as a dict (pipesched's keys; a debugging aid on
        Azure as here)."""
        data = asdict(self._read())
        data["steps"] = list(data["steps"])
        return data

    # -- reading ------------------------------------------------------------------------------

    def _read(self) -> RunView:
        run = self.run_instance
        backend = run._backend
        if isinstance(run, StepRun):
            run_id, only = run.parent_id, run.id.partition("/")[2]
        else:
            run_id, only = run.id, None
        detail = backend.get_run(run_id)
        now = datetime.now(UTC)
        steps = tuple(
            StepView(
                step=s["name"],
                name=s["display_name"] or s["name"],
                status=STEP_STATUS_CODES[s["status"]],
                pipesched_status=s["status"],
                started_at=s["started_at"],
                duration=_seconds(s["started_at"], s["finished_at"], now),
                log=self._log_of(backend, detail["id"], s),
                reused_from=s["reused_from"],
            )
            for s in detail["steps"]
            if only is None or s["name"] == only
        )
        if only is not None and not steps:
            raise NotFound(f"run {detail['id']} has no step {only!r}")
        status = STATUS_CODES[detail["status"]]
        if only is None:
            final = status in FINAL
        else:
            # A failed step may yet be retried while its run goes on.
            step = steps[0].pipesched_status
            final = status in FINAL or (step in FINISHED_STEP and step != "failed")
        return RunView(
            run_id=detail["id"],
            experiment=detail["experiment"] or run.experiment.name,
            status=status,
            duration=_seconds(detail["started_at"], detail["finished_at"], now),
            steps=steps,
            step_run=only,
            final=final,
        )

    def _log_of(self, backend: Any, run_id: str, step: dict[str, Any]) -> str | None:
        """Where the step's latest attempt logs: the daemon's URL of it, or the file on this
        machine (read from the store once per attempt)."""
        if step["status"] in ("reused", "skipped") or not step["started_at"]:
            return None
        if isinstance(backend, RemoteBackend):
            return (
                f"{backend.origin}/api/v1/runs/{quote(run_id, safe='')}"
                f"/steps/{quote(step['name'], safe='')}/logs"
            )
        key = (step["name"], step["attempt"])
        if key not in self._log_paths:
            detail = backend.store.get_run_detail(run_id)
            self._log_paths[key] = pick_attempt(detail, step["name"], None).log_path
        return self._log_paths[key]

    # -- following ----------------------------------------------------------------------------

    def _follow(
        self,
        render: Callable[[RunView], Any],
        last: RunView,
        closed: Callable[[], bool] = lambda: False,
    ) -> RunView:
        """Read and ``render`` the run after ``last`` until it ends (or ``closed()``); the last
        view. Reads start quick and back off while nothing changes, as
        ``wait_for_completion`` polls."""
        interval, failing_since = POLL_FIRST, None
        while not last.final:
            time.sleep(interval)
            if closed():
                break
            try:
                view = self._read()
            except NotFound:
                raise
            except (PipeschedError, OSError):
                failing_since = failing_since or time.monotonic()
                if time.monotonic() - failing_since > RETRY_SECONDS:
                    raise
                interval = POLL_MAX
                continue
            failing_since = None
            news = view.changes() != last.changes()
            interval = POLL_FIRST if news else min(POLL_MAX, interval * POLL_GROWTH)
            render(view)
            last = view
        return last

    def _render_until_done(self, render_lib: Callable[[str], Any]) -> None:
        first = self._read()
        render_lib(render_html(first))
        self._follow(lambda view: render_lib(render_html(view)), first)

    def _print_progress(self) -> None:
        progress = _Progress()

        def render(view: RunView) -> None:
            for line in progress.lines(view):
                print(line)
            sys.stdout.flush()

        first = self._read()
        if first.step_run is None:
            print(f"PipelineRunId: {first.run_id}")
        else:
            print(f"StepRunId: {first.run_id}/{first.step_run}")
        render(first)
        self._follow(render, first)

    def _in_background(
        self, show: Callable[[str], Any], first: RunView, closed: Callable[[], bool]
    ) -> None:
        """Follow the run on a daemon thread (a kernel that exits does not wait for it). A
        failure is shown in the view, never raised into whichever cell runs then."""
        latest = [first]

        def render(view: RunView) -> None:
            latest[0] = view
            show(render_html(view))

        def refresh() -> None:
            try:
                self._follow(render, first, closed)
            except Exception as exc:
                show(render_html(latest[0], stopped=f"stopped following the run: {exc}"))

        self._refresher = threading.Thread(
            target=refresh, name=f"RunDetails-{first.run_id}", daemon=True
        )
        self._refresher.start()

    def _show_html(self) -> None:
        # lazy: IPython is optional, and present whenever a kernel is
        from IPython.display import HTML, display

        first = self._read()
        handle = display(HTML(render_html(first)), display_id=True)
        if not first.final:
            self._in_background(lambda text: handle.update(HTML(text)), first, lambda: False)

    def _show_widget(self, widgets: Any) -> None:
        # lazy: IPython is optional, and present whenever a kernel is
        from IPython.display import display

        first = self._read()
        widget = widgets.HTML(value=render_html(first))
        self.widget_instance = widget
        display(widget)
        if not first.final:
            self._in_background(
                lambda text: setattr(widget, "value", text),
                first,
                lambda: widget.comm is None,  # widget.close() was called
            )


class _Progress:
    """Progress lines in ``wait_for_completion(show_output=True)``'s words: a step's line each
    time its status changes, the run's when its status does."""

    def __init__(self) -> None:
        self.steps: dict[str, str] = {}
        self.run: str | None = None

    def lines(self, view: RunView) -> list[str]:
        out = []
        for step in sorted(view.steps, key=_start_order):
            if step.status == "NotStarted" or self.steps.get(step.step) == step.status:
                continue
            seen_running = self.steps.get(step.step) == "Running"
            self.steps[step.step] = step.status
            text = f"StepRun( {step.name} ) Status: {step.status}"
            if step.pipesched_status in ("reused", "skipped"):
                origin = f" from {step.reused_from}" if step.reused_from else ""
                text += f" ({step.pipesched_status}{origin})"
            elif step.status != "Running" and step.duration is not None:
                text += f" in {format_duration(step.duration)}"
            if step.log and (step.status in ("Running", "Failed") or not seen_running):
                text += f"; log: {step.log}"
            out.append(text)
        if view.step_run is None and view.status != self.run:
            if view.status != "NotStarted" or self.run is not None:
                took = (
                    f" in {format_duration(view.duration)}"
                    if view.final and view.duration is not None
                    else ""
                )
                line = f"PipelineRun Status: {view.status}{took}"
                # The run's start comes before its steps' lines, its end after them.
                out = [*out, line] if view.final else [line, *out]
            self.run = view.status
        return out


def _start_order(step: StepView) -> tuple[bool, str]:
    return (step.started_at is None, step.started_at or "")


def render_html(view: RunView, stopped: str | None = None) -> str:
    """The view as an HTML fragment: a header line and a table of the steps; ``stopped`` says
    why the view no longer follows the run."""
    kind = "StepRun" if view.step_run else "PipelineRun"
    shown_id = f"{view.run_id}/{view.step_run}" if view.step_run else view.run_id
    took = f" · {format_duration(view.duration)}" if view.duration is not None else ""
    rows = "".join(
        "<tr>"
        f"<td style='text-align:left'>{_e(s.name)}</td>"
        f"<td style='text-align:left'>{_status(s.status)}{_why(s)}</td>"
        f"<td style='text-align:right'>{_e(format_duration(s.duration)) if s.duration is not None else ''}</td>"
        f"<td style='text-align:left'>{_log_cell(s.log)}</td>"
        "</tr>"
        for s in view.steps
    )
    footer = _e(stopped) if stopped else "ended" if view.final else "updating until the run ends"
    return (
        "<div class='pipesched-run-details'>"
        f"<p><b>{kind}</b> <code>{_e(shown_id)}</code> · experiment <code>{_e(view.experiment)}</code>"
        f" · {_status(view.status)}{_e(took)}</p>"
        "<table><thead><tr>"
        "<th style='text-align:left'>Step</th><th style='text-align:left'>Status</th>"
        "<th style='text-align:right'>Duration</th><th style='text-align:left'>Log</th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
        f"<p style='color:#6b7280'><i>{footer}</i></p>"
        "</div>"
    )


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _status(word: str) -> str:
    colour = _COLOURS.get(word, "inherit")
    return f"<b style='color:{colour}'>{_e(word)}</b>"


def _why(step: StepView) -> str:
    if step.pipesched_status == "reused" and step.reused_from:
        return f" (reused from <code>{_e(step.reused_from)}</code>)"
    if step.pipesched_status == "skipped":
        return " (skipped)"
    return ""


def _log_cell(log: str | None) -> str:
    if log is None:
        return ""
    if log.startswith(("http://", "https://")):
        return f"<a href='{_e(log)}' target='_blank'>{_e(log)}</a>"
    return f"<code>{_e(log)}</code>"


def _seconds(started: str | None, finished: str | None, now: datetime) -> float | None:
    if not started:
        return None
    end = datetime.fromisoformat(finished) if finished else now
    return max(0.0, (end - datetime.fromisoformat(started)).total_seconds())


def _kernel_shell() -> Any:
    """The IPython shell when running in a Jupyter kernel, else None. A kernel has imported
    IPython already: a script that never did is not in one, and does not import it here."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    shell = ipython.get_ipython()
    return shell if getattr(shell, "kernel", None) is not None else None


def _ipywidgets() -> Any:
    """The ipywidgets module when it is installed, else None (the view is then HTML updated in
    place)."""
    try:
        return importlib.import_module("ipywidgets")  # lazy: optional, imported only in a kernel
    except ImportError:
        return None
