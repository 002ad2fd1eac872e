"""A run's timeline: one row per step, a bar from when it started to when it ended.

Drawn by hand as SVG on the server: a Gantt chart is a few rectangles, lines and text, which a
page can show without a chart library, a script, a dependency to install or a CDN to reach. The
colours come from the ``status-*`` classes of ``drawing.css``.

Times are seconds since the run was created. A step still running (no end) is drawn up to
``now``; a step that never started gets its row and the words "not started" but no bar. A bar is
never narrower than ``min_bar_px`` so a 4 ms step shows beside a 28 s one; the rest of a bar's
width is in proportion to its duration.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

from scheduler.web.drawing.axis import (
    coordinate,
    duration_ticks,
    format_duration,
    safe_href,
    status_class,
    svg_open,
    text,
    truncate,
)

WIDTH = 800
LABEL_X = 8
LABEL_COLUMNS = 28
PLOT_LEFT = 220
PLOT_RIGHT = WIDTH - 24
AXIS_HEIGHT = 28
ROW_HEIGHT = 22
BAR_HEIGHT = 14
BOTTOM = 8


@dataclass(frozen=True)
class Bar:
    """One step's (or one attempt's) span: ``start`` and ``end`` in seconds since the run was
    created; ``end`` None while it runs, ``start`` None if it never started. ``label`` is shown
    instead of ``step`` when given; ``href`` makes the row a link."""

    step: str
    status: str
    start: float | None
    end: float | None
    href: str | None = None
    label: str | None = None


def _span(bar: Bar, now: float) -> tuple[float, float] | None:
    """Where ``bar`` starts and ends on the axis, or None when it never started."""
    if bar.start is None or not math.isfinite(bar.start):
        return None
    start = max(0.0, bar.start)
    end = bar.end if bar.end is not None and math.isfinite(bar.end) else now
    if not math.isfinite(end):
        end = start
    return start, max(start, end)


def _empty(message: str) -> Markup:
    return Markup(
        svg_open(element_id="timeline", kind="timeline", width=WIDTH, height=40, label=message)
        + f'<text class="empty" x="{LABEL_X}" y="24">{text(message)}</text></svg>'
    )


def timeline_svg(bars: Sequence[Bar], *, now: float, min_bar_px: float = 4) -> Markup:
    """The timeline of ``bars`` as one ``<svg id="timeline">``, one row per bar in the given
    order; ``now`` (seconds since the run was created) is where a running step's bar ends."""
    if not bars:
        return _empty("no steps have started")
    spans = [_span(bar, now) for bar in bars]
    started = [span for span in spans if span is not None]
    end = max((span[1] for span in started), default=0.0)
    ticks = duration_ticks(end if end > 0 else 1.0)
    axis_end = ticks[-1]
    plot_width = PLOT_RIGHT - PLOT_LEFT
    scale = plot_width / axis_end
    height = AXIS_HEIGHT + ROW_HEIGHT * len(bars) + BOTTOM
    label = f"Timeline of {len(bars)} steps, {len(started)} started"

    parts = [
        svg_open(element_id="timeline", kind="timeline", width=WIDTH, height=height, label=label)
    ]
    if started:
        parts.append('<g class="axis">')
        for tick in ticks:
            tick_x = coordinate(PLOT_LEFT + tick * scale)
            shown = "0" if tick == 0 else format_duration(tick)
            parts.append(
                f'<line class="grid" x1="{tick_x}" y1="{AXIS_HEIGHT - 6}" x2="{tick_x}"'
                f' y2="{height - BOTTOM}"/>'
                f'<text class="tick" x="{tick_x}" y="{AXIS_HEIGHT - 10}"'
                f' text-anchor="middle">{text(shown)}</text>'
            )
        parts.append("</g>")

    for row, (bar, span) in enumerate(zip(bars, spans, strict=True)):
        name = bar.label if bar.label is not None else bar.step
        top = AXIS_HEIGHT + row * ROW_HEIGHT
        baseline = coordinate(top + ROW_HEIGHT / 2 + 4)
        row_parts = [
            f'<text class="label" x="{LABEL_X}" y="{baseline}"><title>{text(name)}</title>'
            f"{text(truncate(name, LABEL_COLUMNS))}</text>"
        ]
        if span is None:
            row_parts.append(
                f'<text class="not-started" x="{PLOT_LEFT + 4}" y="{baseline}">not started</text>'
            )
        else:
            start, stop = span
            width = max(min_bar_px, (stop - start) * scale)
            x = min(PLOT_LEFT + start * scale, PLOT_RIGHT - width)
            running = bar.end is None or not math.isfinite(bar.end)
            took = format_duration(stop - start) + (" so far" if running else "")
            row_parts.append(
                f'<rect class="bar {status_class(bar.status)}" data-step="{text(bar.step)}"'
                f' data-status="{text(bar.status)}" x="{coordinate(x)}"'
                f' y="{coordinate(top + (ROW_HEIGHT - BAR_HEIGHT) / 2)}"'
                f' width="{coordinate(width)}" height="{BAR_HEIGHT}" rx="2">'
                f"<title>{text(name)} · {text(bar.status)} · {text(took)}</title></rect>"
            )
        href = safe_href(bar.href)
        row_class = "row not-started-row" if span is None else "row"
        parts.append(f'<g class="{row_class}">')
        if href is not None:
            parts.append(f'<a href="{text(href)}">{"".join(row_parts)}</a>')
        else:
            parts.extend(row_parts)
        parts.append("</g>")

    any_running = any(bar.end is None for bar, span in zip(bars, spans, strict=True) if span)
    if any_running and math.isfinite(now):
        now_x = coordinate(PLOT_LEFT + min(max(now, 0.0), axis_end) * scale)
        parts.append(
            f'<line class="now" x1="{now_x}" y1="{AXIS_HEIGHT - 6}" x2="{now_x}"'
            f' y2="{height - BOTTOM}">'
            f"<title>now</title></line>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
