"""A pipeline's steps as a graph, left to right: each step a box in the colour of its status, an
arrow from each step to the steps that need it.

The layout is written here rather than taken from graphviz or networkx: graphviz is a system
binary to install and run per page, networkx a heavy import for one small job, and a pipeline is
a small DAG that a few lines lay out well enough. The layering is the first half of the classic
Sugiyama method:

1. a step's layer (its column) is the longest path to it from a step with no inputs, so every
   arrow points right;
2. within a column, steps are ordered by the mean position of their inputs (then of their
   outputs), a few sweeps each way, which removes most crossings.

A cycle cannot come from a valid pipeline, but the drawing must not hang on one: steps that
cannot be placed by (1) all go to one last column. Edges naming an unknown step are ignored.
Like the other drawings it is SVG built on the server, with colours from ``drawing.css``.
"""

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
GAP_X = 56
GAP_Y = 14
MARGIN = 12
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


def layers(node_ids: Sequence[str], edges: Sequence[tuple[str, str]]) -> list[list[str]]:
    """The columns of the graph, left to right, each in its top-to-bottom order.

    ``node_ids`` must be distinct; edges between unknown ids or from a node to itself are
    ignored."""
    known = set(node_ids)
    links = list(dict.fromkeys((a, b) for a, b in edges if a in known and b in known and a != b))
    parents: dict[str, list[str]] = {node: [] for node in node_ids}
    children: dict[str, list[str]] = {node: [] for node in node_ids}
    for source, target in links:
        children[source].append(target)
        parents[target].append(source)

    # Longest path from a root, in topological order (Kahn's algorithm).
    waiting = {node: len(parents[node]) for node in node_ids}
    layer_of = dict.fromkeys(node_ids, 0)
    ready = deque(node for node in node_ids if waiting[node] == 0)
    placed: set[str] = set()
    while ready:
        node = ready.popleft()
        placed.add(node)
        for child in children[node]:
            layer_of[child] = max(layer_of[child], layer_of[node] + 1)
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    deepest = max((layer_of[node] for node in placed), default=-1)
    for node in node_ids:
        if node not in placed:  # on or after a cycle
            layer_of[node] = deepest + 1

    columns: list[list[str]] = [[] for _ in range(max(layer_of.values(), default=-1) + 1)]
    for node in node_ids:
        columns[layer_of[node]].append(node)
    tallest = max((len(column) for column in columns), default=0)

    def slot(column: list[str], index: int) -> float:
        # Shorter columns are centred, so a position compares across columns.
        return (tallest - len(column)) / 2 + index

    position = {
        node: slot(column, index) for column in columns for index, node in enumerate(column)
    }

    def reorder(column: list[str], neighbours: dict[str, list[str]], before: bool) -> None:
        def barycenter(node: str) -> float:
            near = [
                position[other]
                for other in neighbours[node]
                if (layer_of[other] < layer_of[node]) == before
                and layer_of[other] != layer_of[node]
            ]
            return sum(near) / len(near) if near else position[node]

        column.sort(key=barycenter)  # stable: ties keep their order
        for index, node in enumerate(column):
            position[node] = slot(column, index)

    for _ in range(SWEEPS):
        for column in columns[1:]:
            reorder(column, parents, before=True)
        for column in reversed(columns[:-1]):
            reorder(column, children, before=False)
    return columns


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
    columns = layers(list(by_id), edges)
    tallest = max(len(column) for column in columns)
    width = MARGIN * 2 + len(columns) * NODE_WIDTH + (len(columns) - 1) * GAP_X
    height = MARGIN * 2 + tallest * NODE_HEIGHT + (tallest - 1) * GAP_Y

    corner: dict[str, tuple[float, float]] = {}
    for layer, column in enumerate(columns):
        offset = (tallest - len(column)) / 2
        for index, node_id in enumerate(column):
            corner[node_id] = (
                MARGIN + layer * (NODE_WIDTH + GAP_X),
                MARGIN + (offset + index) * (NODE_HEIGHT + GAP_Y),
            )

    marker = f"arrow-{next(_marker_ids)}"
    label = f"Graph of {len(by_id)} steps"
    parts = [
        svg_open(element_id="graph", kind="graph", width=width, height=height, label=label),
        f'<defs><marker id="{marker}" class="arrow" viewBox="0 0 10 10" refX="10" refY="5"'
        ' markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M0,0 L10,5 L0,10 z"/></marker></defs>',
        '<g class="edges">',
    ]
    for source, target in dict.fromkeys(edges):
        if source not in corner or target not in corner:
            continue
        parts.append(
            f'<path class="edge" data-from="{text(source)}" data-to="{text(target)}"'
            f' d="{_edge_path(corner[source], corner[target], source == target)}"'
            f' marker-end="url(#{marker})"/>'
        )
    parts.append('</g><g class="nodes">')
    for node_id, (x, y) in corner.items():
        parts.append(_node(by_id[node_id], x, y))
    parts.append("</g></svg>")
    return Markup("".join(parts))


def _edge_path(source: tuple[float, float], target: tuple[float, float], loop: bool) -> str:
    """A cubic curve from the right middle of the source's box to the left middle of the
    target's; a step that needs itself gets a loop over its box."""
    x1, y1 = source[0] + NODE_WIDTH, source[1] + NODE_HEIGHT / 2
    x2, y2 = target[0], target[1] + NODE_HEIGHT / 2
    if loop:
        top = source[1] - 6
        return (
            f"M{coordinate(x1 - 20)},{coordinate(source[1])} "
            f"C{coordinate(x1 - 20)},{coordinate(top - 14)} {coordinate(x2 + 20)},"
            f"{coordinate(top - 14)} {coordinate(x2 + 20)},{coordinate(target[1])}"
        )
    bend = max(GAP_X / 2, abs(x2 - x1) / 2)
    return (
        f"M{coordinate(x1)},{coordinate(y1)} "
        f"C{coordinate(x1 + bend)},{coordinate(y1)} {coordinate(x2 - bend)},{coordinate(y2)}"
        f" {coordinate(x2)},{coordinate(y2)}"
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
