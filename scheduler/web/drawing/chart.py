"""One metric across a pipeline's runs: a point per run that logged it, oldest on the left, joined
by a line, on a y axis of round numbers.

Drawn by hand as SVG on the server, like the other drawings: a line chart is a polyline, some
circles and text, which needs no chart library, no script, no dependency and no CDN. Each point
is a link to its run when given one, and carries its run id and exact value as data attributes.

Values that are not finite (NaN, infinities) cannot be placed; they are left out, the line breaks
where they were, and a note inside the chart says how many there were.
"""

from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup

from scheduler.web.drawing.axis import (
    coordinate,
    display_width,
    format_number,
    format_ticks,
    nice_ticks,
    safe_href,
    status_class,
    svg_open,
    text,
    truncate,
)

WIDTH = 720
HEIGHT = 280
PLOT_RIGHT = WIDTH - 20
PLOT_TOP = 32
PLOT_BOTTOM = HEIGHT - 40
INSET = 10  # between the axes and the first and last points
CHAR_PX = 7.0  # a column of the 11px tick labels, with room to spare
LABEL_GAP = 12
X_LABEL_COLUMNS = 14
TITLE_COLUMNS = 60
Y_TICKS = 5


@dataclass(frozen=True)
class Point:
    """One run's value of the metric; ``label`` names the run on the x axis and in the point's
    tooltip."""

    run_id: str
    label: str
    value: float
    href: str | None = None
    status: str = "completed"


def _small(message: str, note: str = "") -> Markup:
    note_text = f'<text class="note" x="12" y="48">{text(note)}</text>' if note else ""
    return Markup(
        svg_open(element_id="metric-chart", kind="chart", width=WIDTH, height=60, label=message)
        + f'<text class="empty" x="12" y="26">{text(message)}</text>{note_text}</svg>'
    )


def _not_finite_note(count: int) -> str:
    return f"{count} value{'' if count == 1 else 's'} not finite" if count else ""


def _value_range(values: list[float]) -> tuple[float, float]:
    """The smallest and largest value, spread apart when they are equal so the points sit in the
    middle of the axis rather than on its edge."""
    low, high = min(values), max(values)
    if low == high:
        pad = abs(low) / 10 or 1.0
        largest = sys.float_info.max
        low, high = max(low - pad, -largest), min(high + pad, largest)
    return low, high


def _fraction(value: float, low: float, high: float) -> float:
    """Where ``value`` lies between ``low`` (0) and ``high`` (1), without overflowing when the
    bounds are near the largest floats."""
    span = high - low
    if math.isfinite(span) and span > 0:
        return (value - low) / span
    half_span = high / 2 - low / 2
    return (value / 2 - low / 2) / half_span if half_span > 0 else 0.5


def _x_labels(
    labels: list[str], x_of: Callable[[int], float], left: float, right: float
) -> list[tuple[int, float]]:
    """Which points get their label under the x axis, and where its middle goes: the first, the
    last, and evenly spaced ones between, as many as fit side by side without touching. A label
    near an end is moved inwards so it stays between ``left`` and ``right``."""
    count = len(labels)
    if count == 0:
        return []

    def extent(index: int) -> tuple[float, float, float]:
        half = display_width(truncate(labels[index], X_LABEL_COLUMNS)) * CHAR_PX / 2
        middle = min(max(x_of(index), left + half), right - half)
        return middle - half, middle, middle + half

    def apart(indices: list[int]) -> bool:
        ends = [extent(index) for index in indices]
        return all(a[2] + LABEL_GAP <= b[0] for a, b in itertools.pairwise(ends))

    widest = max(display_width(truncate(label, X_LABEL_COLUMNS)) for label in labels) * CHAR_PX
    fits = max(2, int((right - left) // (widest + LABEL_GAP)))
    step = 1 if count <= fits else math.ceil((count - 1) / (fits - 1))
    while step < count:
        chosen = sorted({*range(0, count, step), count - 1})
        if apart(chosen):
            return [(index, extent(index)[1]) for index in chosen]
        # The last label may come closer than a step after the one before it: drop that one.
        chosen = [*chosen[:-2], count - 1]
        if len(chosen) >= 2 and apart(chosen):
            return [(index, extent(index)[1]) for index in chosen]
        step += 1
    chosen = [0, count - 1] if count > 1 and apart([0, count - 1]) else [0]
    return [(index, extent(index)[1]) for index in chosen]


def metric_chart_svg(metric: str, points: Sequence[Point]) -> Markup:
    """The values of ``metric`` in ``points`` (oldest first) as one ``<svg id="metric-chart">``
    with one ``<circle class="point">`` per finite value."""
    if not points:
        return _small(f"no runs logged {metric}")
    finite = [point for point in points if math.isfinite(point.value)]
    note = _not_finite_note(len(points) - len(finite))
    if not finite:
        return _small(f"no finite values of {metric}", note)

    low, high = _value_range([point.value for point in finite])
    ticks = nice_ticks(low, high, Y_TICKS)
    axis_low, axis_high = min(low, ticks[0]), max(high, ticks[-1])
    tick_labels = format_ticks(ticks)
    plot_left = max(48.0, 14 + CHAR_PX * max(len(label) for label in tick_labels))
    first_x, last_x = plot_left + INSET, PLOT_RIGHT - INSET

    def x_of(index: int) -> float:
        if len(points) == 1:
            return (first_x + last_x) / 2
        return first_x + index * (last_x - first_x) / (len(points) - 1)

    def y_of(value: float) -> float:
        return PLOT_BOTTOM - _fraction(value, axis_low, axis_high) * (PLOT_BOTTOM - PLOT_TOP)

    label = f"{metric} across {len(points)} runs"
    parts = [
        svg_open(element_id="metric-chart", kind="chart", width=WIDTH, height=HEIGHT, label=label),
        f'<text class="metric" x="{coordinate(plot_left)}" y="18"><title>{text(metric)}</title>'
        f"{text(truncate(metric, TITLE_COLUMNS))}</text>",
    ]
    if note:
        parts.append(
            f'<text class="note" x="{PLOT_RIGHT}" y="18" text-anchor="end">{text(note)}</text>'
        )

    parts.append('<g class="axis y-axis">')
    for tick, tick_label in zip(ticks, tick_labels, strict=True):
        y = coordinate(y_of(tick))
        parts.append(
            f'<line class="grid" x1="{coordinate(plot_left)}" y1="{y}" x2="{PLOT_RIGHT}"'
            f' y2="{y}"/><text class="tick" x="{coordinate(plot_left - 6)}" y="{y}"'
            f' dy="4" text-anchor="end">{text(tick_label)}</text>'
        )
    parts.append(
        f'<line class="axis-line" x1="{coordinate(plot_left)}" y1="{PLOT_BOTTOM}"'
        f' x2="{PLOT_RIGHT}" y2="{PLOT_BOTTOM}"/></g><g class="axis x-axis">'
    )
    for index, middle in _x_labels([point.label for point in points], x_of, plot_left, WIDTH - 4):
        name = points[index].label
        parts.append(
            f'<text class="tick" x="{coordinate(middle)}" y="{PLOT_BOTTOM + 18}"'
            f' text-anchor="middle"><title>{text(name)}</title>'
            f"{text(truncate(name, X_LABEL_COLUMNS))}</text>"
        )
    parts.append("</g>")

    # The line breaks where a value could not be placed.
    runs: list[list[str]] = [[]]
    for index, point in enumerate(points):
        if math.isfinite(point.value):
            runs[-1].append(f"{coordinate(x_of(index))},{coordinate(y_of(point.value))}")
        elif runs[-1]:
            runs.append([])
    for run in runs:
        if len(run) >= 2:
            parts.append(f'<polyline class="line" points="{" ".join(run)}"/>')

    radius = 4 if len(finite) <= 60 else 3 if len(finite) <= 300 else 2
    parts.append(f'<g class="points{" dense" if radius < 3 else ""}">')
    for index, point in enumerate(points):
        if not math.isfinite(point.value):
            continue
        circle = (
            f'<circle class="point {status_class(point.status)}"'
            f' data-run-id="{text(point.run_id)}" data-value="{text(repr(point.value))}"'
            f' cx="{coordinate(x_of(index))}" cy="{coordinate(y_of(point.value))}" r="{radius}">'
            f"<title>{text(point.label)}: {text(format_number(point.value, 6))}</title></circle>"
        )
        href = safe_href(point.href)
        parts.append(circle if href is None else f'<a href="{text(href)}">{circle}</a>')
    parts.append("</g></svg>")
    return Markup("".join(parts))
