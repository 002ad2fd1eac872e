"""A pipeline's steps as a graph, left to right: each step a box in the colour of its status, an
arrow from each step to the steps that need it.

The layout is written here rather than taken from graphviz or networkx: graphviz is a system
binary to install and run per page, networkx a heavy import for one small job, and a pipeline is
a small DAG that a few loops lay out well enough (200 steps in milliseconds). It follows the
classic Sugiyama method, less its refinements:

1. a step's layer (its column) is the longest path to it from a step with no inputs, so every
   arrow points right;
2. an edge that skips columns gets a bend in each column it crosses, which takes a place there
   like a small step, so the edge runs between boxes rather than behind them;
3. within a column, steps and bends are ordered by the mean height of their inputs (then of
   their outputs), a few sweeps each way, which removes most crossings.

A cycle cannot come from a valid pipeline, but the drawing must not hang on one: steps that
cannot be placed by (1) all go to one last column. Edges naming an unknown step are ignored.
Like the other drawings it is SVG built on the server, with colours from ``drawing.css``."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

from scheduler.web.drawing.axis import (
    coordinate,
    safe_href,
    status_class,
    svg_open,
    text,
    truncate,
)

NODE_WIDTH = 160
NODE_HEIGHT = 36
BEND_HEIGHT = 8
GAP_X = 56
GAP_Y = 14
MARGIN = 12
MIN_WIDTH = 720
LABEL_COLUMNS = 21
SWEEPS = 4

# Each drawing's arrow marker gets its own id: a page may hold several graphs, and ids are
# page-wide.
_marker_ids = itertools.count(1)


@dataclass(frozen=True)
class Node:
    """One step: ``id`` is what edges name, ``label`` what the box shows."""

    id: str
    label: str
    status: str
    href: str | None = None


@dataclass
class _Layout:
    """Where everything goes. The items placed are the steps, numbered in the order given, then
    the bends: where an edge that skips columns crosses one of them, it takes a place in that
    column as a step does, so the edge runs between the boxes there rather than behind one."""

    layer: list[int]  # each item's column
    middle: list[float]  # the height of each item's middle
    bends: dict[tuple[int, int], list[int]]  # of each edge that skips columns, left to right
    links: list[tuple[int, int]]  # the edges drawn: between known steps, each once
    height: float  # of the tallest column


def _layers(count: int, links: list[tuple[int, int]]) -> list[int]:
    """Each step's column: the longest path to it from a step with no inputs, found in
    topological order (Kahn's algorithm). Steps that order never reaches, being on or after a
    cycle, go to one column after all the others."""
    children: list[list[int]] = [[] for _ in range(count)]
    waiting = [0] * count
    for source, target in links:
        if source != target:
            children[source].append(target)
            waiting[target] += 1
    layer = [0] * count
    ready = deque(node for node in range(count) if waiting[node] == 0)
    placed = [False] * count
    while ready:
        node = ready.popleft()
        placed[node] = True
        for child in children[node]:
            layer[child] = max(layer[child], layer[node] + 1)
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    after_all = max((layer[node] for node in range(count) if placed[node]), default=-1) + 1
    return [layer[node] if placed[node] else after_all for node in range(count)]


def _layout(node_ids: Sequence[str], edges: Sequence[tuple[str, str]]) -> _Layout:
    """Lay out the distinct ``node_ids`` and the ``edges`` between them; edges naming an unknown
    id are left out."""
    number = {node: index for index, node in enumerate(node_ids)}
    links = list(
        dict.fromkeys((number[a], number[b]) for a, b in edges if a in number and b in number)
    )
    layer = _layers(len(node_ids), links)
    size = [float(NODE_HEIGHT)] * len(node_ids)
    columns: list[list[int]] = [[] for _ in range(max(layer, default=-1) + 1)]
    for node in range(len(node_ids)):
        columns[layer[node]].append(node)

    # The graph the ordering sees: an edge that skips columns becomes a chain through its bends.
    parents: list[list[int]] = [[] for _ in node_ids]
    children: list[list[int]] = [[] for _ in node_ids]
    bends: dict[tuple[int, int], list[int]] = {}
    for source, target in links:
        if layer[target] <= layer[source]:
            continue  # an edge of a cycle: drawn, but no help in ordering
        chain = [source]
        for between in range(layer[source] + 1, layer[target]):
            bend = len(layer)
            layer.append(between)
            size.append(BEND_HEIGHT)
            parents.append([])
            children.append([])
            columns[between].append(bend)
            bends.setdefault((source, target), []).append(bend)
            chain.append(bend)
        chain.append(target)
        for upper, lower in itertools.pairwise(chain):
            children[upper].append(lower)
            parents[lower].append(upper)

    heights = [
        sum(size[item] for item in column) + GAP_Y * max(0, len(column) - 1) for column in columns
    ]
    tallest = max(heights, default=0.0)
    middle = [0.0] * len(layer)

    def place(column: int) -> None:
        """Note the middle of each item of ``column``, centred on the tallest column, so
        positions compare across columns."""
        y = (tallest - heights[column]) / 2
        for item in columns[column]:
            middle[item] = y + size[item] / 2
            y += size[item] + GAP_Y

    def reorder(column: int, neighbours: list[list[int]]) -> None:
        def barycenter(item: int) -> float:
            near = neighbours[item]
            return sum(middle[other] for other in near) / len(near) if near else middle[item]

        columns[column].sort(key=barycenter)  # stable: ties keep their order
        place(column)

    for column in range(len(columns)):
        place(column)
    for _ in range(SWEEPS):
        for column in range(1, len(columns)):
            reorder(column, parents)
        for column in range(len(columns) - 2, -1, -1):
            reorder(column, children)
    return _Layout(layer, middle, bends, links, tallest)


def _empty(message: str) -> Markup:
    return Markup(
        svg_open(element_id="graph", kind="graph", width=NODE_WIDTH * 2, height=40, label=message)
        + f'<text class="empty" x="{MARGIN}" y="24">{text(message)}</text></svg>'
    )


def graph_svg(nodes: Sequence[Node], edges: Sequence[tuple[str, str]]) -> Markup:
    """The graph of ``nodes`` and ``edges`` (each ``(from id, to id)``: the second needs the
    first) as one ``<svg id="graph">``. A node id given twice is drawn once, as first given."""
    by_id: dict[str, Node] = {}
    for node in nodes:
        by_id.setdefault(node.id, node)
    if not by_id:
        return _empty("no steps")
    node_ids = list(by_id)
    layout = _layout(node_ids, edges)
    columns = max(layout.layer) + 1
    # Never narrower than the other drawings, so a graph of few columns is not scaled up past
    # their text size when it fills the page's width: it sits on the left instead.
    width = max(MIN_WIDTH, MARGIN * 2 + columns * NODE_WIDTH + (columns - 1) * GAP_X)

    def left(item: int) -> float:
        return MARGIN + layout.layer[item] * (NODE_WIDTH + GAP_X)

    def middle(item: int) -> float:
        return MARGIN + layout.middle[item]

    marker = f"arrow-{next(_marker_ids)}"
    label = f"Graph of {len(by_id)} steps"
    parts = [
        svg_open(
            element_id="graph",
            kind="graph",
            width=width,
            height=layout.height + 2 * MARGIN,
            label=label,
        ),
        f'<defs><marker id="{marker}" class="arrow" viewBox="0 0 10 10" refX="10" refY="5"'
        ' markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M0,0 L10,5 L0,10 z"/></marker></defs>',
        '<g class="edges">',
    ]
    for source, target in layout.links:
        if source == target:
            path = _loop_path(left(source), middle(source) - NODE_HEIGHT / 2)
        else:
            # Through each bend straight across its column, in curves between columns.
            stops = [(left(source) + NODE_WIDTH, middle(source))]
            for bend in layout.bends.get((source, target), []):
                stops += [(left(bend), middle(bend)), (left(bend) + NODE_WIDTH, middle(bend))]
            stops.append((left(target), middle(target)))
            path = _edge_path(stops)
        parts.append(
            f'<path class="edge" data-from="{text(node_ids[source])}"'
            f' data-to="{text(node_ids[target])}" d="{path}" marker-end="url(#{marker})"/>'
        )
    parts.append('</g><g class="nodes">')
    for index, node in enumerate(by_id.values()):
        parts.append(_node(node, left(index), middle(index) - NODE_HEIGHT / 2))
    parts.append("</g></svg>")
    return Markup("".join(parts))


def _point(x: float, y: float) -> str:
    return f"{coordinate(x)},{coordinate(y)}"


def _edge_path(stops: list[tuple[float, float]]) -> str:
    """A path through ``stops``: from the source box's right side, across each column it skips,
    to the target box's left side. Between columns it is a cubic curve that leaves and arrives
    level; within a skipped column, a straight line."""
    (x, y), rest = stops[0], stops[1:]
    path = [f"M{_point(x, y)}"]
    for index, (next_x, next_y) in enumerate(rest):
        if index % 2 == 1:  # across a skipped column
            path.append(f"L{_point(next_x, next_y)}")
        else:
            pull = max(GAP_X / 2, abs(next_x - x) / 2)
            path.append(
                f"C{_point(x + pull, y)} {_point(next_x - pull, next_y)} {_point(next_x, next_y)}"
            )
        x, y = next_x, next_y
    return " ".join(path)


def _loop_path(x: float, top: float) -> str:
    """A step that needs itself: a loop over its box, from its top right to its top left."""
    high = top - 12
    return (
        f"M{_point(x + NODE_WIDTH - 20, top)} "
        f"C{_point(x + NODE_WIDTH - 20, high)} {_point(x + 20, high)} {_point(x + 20, top)}"
    )


def _node(node: Node, x: float, y: float) -> str:
    shape = (
        f'<g class="node {status_class(node.status)}" data-step="{text(node.id)}"'
        f' data-status="{text(node.status)}">'
        f"<title>{text(node.label)} · {text(node.status)}</title>"
        f'<rect x="{coordinate(x)}" y="{coordinate(y)}" width="{NODE_WIDTH}"'
        f' height="{NODE_HEIGHT}" rx="6"/>'
        f'<text class="label" x="{coordinate(x + 10)}" y="{coordinate(y + 15)}">'
        f"{text(truncate(node.label, LABEL_COLUMNS))}</text>"
        f'<text class="status" x="{coordinate(x + 10)}" y="{coordinate(y + 29)}">'
        f"{text(truncate(node.status, LABEL_COLUMNS))}</text></g>"
    )
    href = safe_href(node.href)
    return shape if href is None else f'<a href="{text(href)}">{shape}</a>'
