"""The web view's SVG drawings: a run's timeline, a pipeline's step graph, a metric across runs.

Each drawing is parsed as XML, as a browser would: it must be well-formed whatever the names in
it, and the elements a page test selects (``rect.bar``, ``g.node``, ``path.edge``,
``circle.point``) must carry the data they promise and sit where a reader expects them.
"""

from __future__ import annotations

import itertools
import math
import random
import re
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from scheduler.web.drawing.axis import (
    duration_ticks,
    format_duration,
    format_number,
    format_ticks,
    nice_ticks,
    truncate,
)
from scheduler.web.drawing.chart import Point, metric_chart_svg
from scheduler.web.drawing.graph import Node, graph_svg
from scheduler.web.drawing.timeline import Bar, timeline_svg

SVG = "{http://www.w3.org/2000/svg}"

HOSTILE_NAMES = [
    "<script>alert(1)</script>",
    "a & b &amp; c",
    "quote \" and ' apostrophe",
    "x" * 500,
    "train 🚀 模型 🧪👩‍🔬",
    "</svg><svg onload=alert(1)>",
    "bell\x07and\x00nul",
]


def parse(svg: Markup) -> ET.Element:
    assert isinstance(svg, Markup)
    root = ET.fromstring(str(svg))
    assert root.tag == f"{SVG}svg"
    assert root.get("width") == "100%"
    assert root.get("role") == "img"
    assert root.get("aria-label")
    assert len(root.get("viewBox", "").split()) == 4
    return root


def elements(root: ET.Element, tag: str, css_class: str) -> list[ET.Element]:
    return [
        element
        for element in root.iter(f"{SVG}{tag}")
        if css_class in element.get("class", "").split()
    ]


def title_of(element: ET.Element) -> str:
    title = element.find(f"{SVG}title")
    assert title is not None
    return title.text or ""


def shown_text(element: ET.Element) -> str:
    """The text an element shows, leaving out its tooltip."""
    title = element.find(f"{SVG}title")
    return (element.text or "") + (title.tail or "" if title is not None else "")


def all_text(root: ET.Element) -> str:
    return " ".join("".join(element.itertext()) for element in root.iter(f"{SVG}text"))


def bar_of(root: ET.Element, step: str) -> ET.Element:
    [bar] = [bar for bar in elements(root, "rect", "bar") if bar.get("data-step") == step]
    return bar


def width(element: ET.Element) -> float:
    return float(element.get("width", "nan"))


def right_edge(element: ET.Element) -> float:
    return float(element.get("x", "nan")) + width(element)


# The timeline


def test_a_short_step_still_shows_and_long_steps_are_in_proportion() -> None:
    root = parse(
        timeline_svg(
            [
                Bar("prepare", "completed", 0.0, 10.0),
                Bar("quick", "completed", 10.0, 10.004),
                Bar("train", "completed", 0.0, 20.0),
            ],
            now=30.0,
            min_bar_px=4,
        )
    )
    assert root.get("id") == "timeline"
    quick, prepare, train = (bar_of(root, step) for step in ("quick", "prepare", "train"))
    assert width(quick) >= 4
    assert width(train) / width(prepare) == pytest.approx(2, rel=0.01)
    assert title_of(quick) == "quick · completed · 4 ms"
    assert (quick.get("data-status"), train.get("data-status")) == ("completed", "completed")


def test_a_running_step_is_drawn_up_to_now() -> None:
    root = parse(
        timeline_svg(
            [Bar("load", "completed", 0.0, 12.0), Bar("train", "running", 2.0, None)], now=12.0
        )
    )
    train = bar_of(root, "train")
    assert right_edge(train) == pytest.approx(right_edge(bar_of(root, "load")), abs=0.02)
    assert train.get("class", "").split() == ["bar", "status-running"]
    assert title_of(train) == "train · running · 10 s so far"


def test_the_time_axis_counts_in_round_seconds() -> None:
    root = parse(timeline_svg([Bar("train", "completed", 0.0, 28.0)], now=40.0))
    ticks = [text.text for text in elements(root, "text", "tick")]
    assert ticks[:3] == ["0", "5 s", "10 s"]
    assert ticks[-1] == "30 s"


def test_a_step_that_never_started_has_a_row_but_no_bar() -> None:
    root = parse(
        timeline_svg(
            [Bar("load", "completed", 0.0, 1.0), Bar("train", "pending", None, None)], now=5.0
        )
    )
    assert [bar.get("data-step") for bar in elements(root, "rect", "bar")] == ["load"]
    assert [shown_text(label) for label in elements(root, "text", "label")] == ["load", "train"]
    assert "not started" in all_text(root)


def test_no_steps_gives_a_small_drawing_saying_so() -> None:
    root = parse(timeline_svg([], now=0.0))
    assert root.get("id") == "timeline"
    assert "no steps have started" in all_text(root)


def test_a_bar_links_to_its_step_and_a_script_link_is_dropped() -> None:
    root = parse(
        timeline_svg(
            [
                Bar("load", "completed", 0.0, 1.0, href="/runs/r1?step=load&x=1"),
                Bar("evil", "completed", 0.0, 1.0, href=" JavaScript:alert(1)"),
            ],
            now=1.0,
        )
    )
    links = list(root.iter(f"{SVG}a"))
    assert [link.get("href") for link in links] == ["/runs/r1?step=load&x=1"]
    assert bar_of(root, "load") in list(links[0].iter())


def test_a_long_name_is_cut_with_an_ellipsis_and_kept_whole_in_its_title() -> None:
    name = "a_very_long_step_name_that_goes_on_and_on"
    root = parse(timeline_svg([Bar(name, "completed", 0.0, 1.0)], now=1.0))
    [label] = elements(root, "text", "label")
    assert title_of(label) == name
    shown = shown_text(label)
    assert shown.endswith("…") and len(shown) <= 28 and name.startswith(shown[:-1])


# The graph


def node_corners(root: ET.Element, axis: str) -> dict[str, float]:
    """Each node's box's ``x`` or ``y``, by step."""
    found: dict[str, float] = {}
    for node in elements(root, "g", "node"):
        [rect] = node.iter(f"{SVG}rect")
        found[node.get("data-step", "")] = float(rect.get(axis, "nan"))
    return found


def node_x(root: ET.Element) -> dict[str, float]:
    return node_corners(root, "x")


def node_y(root: ET.Element) -> dict[str, float]:
    return node_corners(root, "y")


def nodes_of(*names: str, status: str = "completed") -> list[Node]:
    return [Node(name, name, status) for name in names]


def test_a_chain_runs_left_to_right() -> None:
    root = parse(
        graph_svg(nodes_of("fit", "score", "load", "clean"), [
            ("load", "clean"), ("clean", "fit"), ("fit", "score"),
        ])
    )  # fmt: skip
    assert root.get("id") == "graph"
    xs = node_x(root)
    assert xs["load"] < xs["clean"] < xs["fit"] < xs["score"]


def test_a_diamond_puts_its_two_middle_steps_in_one_column() -> None:
    edges = [("load", "left"), ("load", "right"), ("left", "join"), ("right", "join")]
    root = parse(graph_svg(nodes_of("load", "left", "right", "join"), edges))
    xs, ys = node_x(root), node_y(root)
    assert xs["left"] == xs["right"]
    assert ys["left"] != ys["right"]
    assert xs["load"] < xs["left"] < xs["join"]


def test_every_node_once_and_every_edge_between_nodes_drawn() -> None:
    nodes = [*nodes_of("a", "b", "c"), Node("a", "duplicate", "failed")]
    edges = [("a", "b"), ("a", "c"), ("b", "ghost"), ("ghost", "c"), ("a", "b")]
    root = parse(graph_svg(nodes, edges))
    steps = [node.get("data-step", "") for node in elements(root, "g", "node")]
    assert sorted(steps) == ["a", "b", "c"]
    drawn = [
        (edge.get("data-from", ""), edge.get("data-to", ""))
        for edge in elements(root, "path", "edge")
    ]
    assert sorted(drawn) == [("a", "b"), ("a", "c")]
    [first] = [node for node in elements(root, "g", "node") if node.get("data-step") == "a"]
    assert first.get("data-status") == "completed"


def test_edges_end_in_an_arrow_of_their_own_drawing() -> None:
    first = parse(graph_svg(nodes_of("a", "b"), [("a", "b")]))
    second = parse(graph_svg(nodes_of("a", "b"), [("a", "b")]))
    ids = []
    for root in (first, second):
        [marker] = root.iter(f"{SVG}marker")
        ids.append(marker.get("id"))
        [edge] = elements(root, "path", "edge")
        assert edge.get("marker-end") == f"url(#{marker.get('id')})"
    assert ids[0] != ids[1]


def test_a_node_links_to_its_step() -> None:
    root = parse(graph_svg([Node("a", "a", "running", href="/runs/r1?step=a")], []))
    [link] = root.iter(f"{SVG}a")
    assert link.get("href") == "/runs/r1?step=a"
    [node] = elements(link, "g", "node")
    assert node.get("class", "").split() == ["node", "status-running"]


@pytest.mark.timeout(20)
def test_a_cycle_is_drawn_without_hanging() -> None:
    edges = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "d"), ("root", "a")]
    root = parse(graph_svg(nodes_of("root", "a", "b", "c", "d"), edges))
    assert sorted(node_x(root)) == ["a", "b", "c", "d", "root"]
    assert len(elements(root, "path", "edge")) == len(edges)


@pytest.mark.timeout(20)
def test_two_hundred_steps_lay_out_with_every_edge_pointing_right() -> None:
    rng = random.Random(7)
    names = [f"step_{index}" for index in range(200)]
    edges = [(names[rng.randrange(i)], names[i]) for i in range(1, 200) for _ in range(2)]
    edges += [(names[rng.randrange(150)], names[rng.randrange(150, 200)]) for _ in range(100)]
    root = parse(graph_svg(nodes_of(*names), edges))
    xs = node_x(root)
    assert len(xs) == 200
    for edge in elements(root, "path", "edge"):
        assert xs[edge.get("data-from", "")] < xs[edge.get("data-to", "")]


def test_an_edge_that_skips_columns_runs_between_their_boxes() -> None:
    edges = [("load", "a"), ("a", "b"), ("b", "report"), ("load", "report")]
    edges += [("load", "a2"), ("a2", "b2"), ("b2", "report"), ("load", "a3"), ("a3", "b3")]
    root = parse(graph_svg(nodes_of("load", "a", "a2", "a3", "b", "b2", "b3", "report"), edges))
    boxes = []
    for node in elements(root, "g", "node"):
        [rect] = node.iter(f"{SVG}rect")
        x, y = float(rect.get("x", "nan")), float(rect.get("y", "nan"))
        boxes.append(
            (x, y, x + float(rect.get("width", "nan")), y + float(rect.get("height", "nan")))
        )
    [skip] = [edge for edge in elements(root, "path", "edge") if edge.get("data-to") == "report"
              and edge.get("data-from") == "load"]  # fmt: skip
    numbers = [float(number) for number in re.findall(r"-?[\d.]+", skip.get("d", ""))]
    stops = list(zip(numbers[::2], numbers[1::2], strict=True))
    assert len(stops) > 4  # it bends through the two columns it skips
    for x, y in stops[1:-1]:
        assert not [box for box in boxes if box[0] <= x <= box[2] and box[1] < y < box[3]]


def test_barycenter_ordering_uncrosses_two_chains() -> None:
    """Two chains given in crossing order (a1 feeds the lower b2) come out without crossing."""
    edges = [("a1", "b2"), ("a2", "b1"), ("b2", "c2"), ("b1", "c1")]
    root = parse(graph_svg(nodes_of("a1", "a2", "b1", "b2", "c1", "c2"), edges))
    ys = node_y(root)
    assert (ys["a1"] < ys["a2"]) == (ys["b2"] < ys["b1"]) == (ys["c2"] < ys["c1"])


# The metric chart


def axis_labels(root: ET.Element, axis: str) -> list[ET.Element]:
    [group] = elements(root, "g", axis)
    return elements(group, "text", "tick")


def circles(root: ET.Element) -> list[ET.Element]:
    return elements(root, "circle", "point")


def cx(circle: ET.Element) -> float:
    return float(circle.get("cx", "nan"))


def cy(circle: ET.Element) -> float:
    return float(circle.get("cy", "nan"))


def points_of(*values: float) -> list[Point]:
    return [Point(f"run{index}", f"#{index}", value) for index, value in enumerate(values)]


def test_points_go_left_to_right_in_order_and_bigger_values_higher() -> None:
    values = [0.9, 0.5, 0.7, 0.1, -0.3]
    root = parse(metric_chart_svg("loss", points_of(*values)))
    assert root.get("id") == "metric-chart"
    found = circles(root)
    assert [circle.get("data-run-id") for circle in found] == [f"run{i}" for i in range(5)]
    assert [float(circle.get("data-value", "nan")) for circle in found] == values
    xs = [cx(circle) for circle in found]
    assert xs == sorted(xs) and len(set(xs)) == 5
    by_value = sorted(found, key=lambda circle: float(circle.get("data-value", "nan")))
    heights = [cy(circle) for circle in by_value]
    assert heights == sorted(heights, reverse=True) and len(set(heights)) == 5
    assert title_of(found[0]) == "#0: 0.9"
    assert "-0.4" in all_text(root)  # the axis reaches below the negative value


def test_values_that_are_not_finite_are_left_out_with_a_note() -> None:
    root = parse(
        metric_chart_svg("loss", points_of(0.5, math.nan, 0.25, math.inf, 0.125, -math.inf))
    )
    assert [circle.get("data-run-id") for circle in circles(root)] == ["run0", "run2", "run4"]
    assert "3 values not finite" in all_text(root)


def test_no_points_gives_a_small_drawing_naming_the_metric() -> None:
    root = parse(metric_chart_svg("val_loss", []))
    assert root.get("id") == "metric-chart"
    assert "no runs logged val_loss" in all_text(root)
    assert circles(root) == []


def test_only_non_finite_values_say_so() -> None:
    root = parse(metric_chart_svg("loss", points_of(math.nan, math.nan)))
    assert circles(root) == []
    assert "2 values not finite" in all_text(root)


def test_one_point_sits_inside_the_plot() -> None:
    root = parse(metric_chart_svg("accuracy", [Point("r1", "r1", 0.93, href="/runs/r1")]))
    [circle] = circles(root)
    [link] = root.iter(f"{SVG}a")
    assert link.get("href") == "/runs/r1"
    assert circle.get("data-value") == "0.93"
    _, _, view_width, view_height = (float(part) for part in root.get("viewBox", "").split())
    assert 0 < cx(circle) < view_width and 0 < cy(circle) < view_height


def test_equal_values_sit_mid_axis_between_distinct_ticks() -> None:
    root = parse(metric_chart_svg("rows", points_of(1000.0, 1000.0, 1000.0)))
    heights = {cy(circle) for circle in circles(root)}
    assert len(heights) == 1
    y_ticks = [float(text.text or "nan") for text in axis_labels(root, "y-axis")]
    assert len(set(y_ticks)) == len(y_ticks) >= 2
    assert min(y_ticks) < 1000 < max(y_ticks)


def test_a_thousand_points_with_a_few_labels_that_do_not_crowd() -> None:
    values = [math.sin(index / 30) * 1e9 for index in range(1000)]
    root = parse(metric_chart_svg("throughput", points_of(*values)))
    assert len(circles(root)) == 1000
    x_labels = axis_labels(root, "x-axis")
    names = [title_of(text) for text in x_labels]
    assert names[0] == "#0" and names[-1] == "#999"
    assert 3 <= len(names) <= 20
    positions = [float(text.get("x", "nan")) for text in x_labels]
    gaps = [after - before for before, after in itertools.pairwise(positions)]
    assert min(gaps) >= 0.6 * (sum(gaps) / len(gaps))
    assert "1e+09" in all_text(root)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=40))
def test_any_finite_values_give_a_well_formed_chart_with_a_circle_each(
    values: list[float],
) -> None:
    root = parse(metric_chart_svg("m", points_of(*values)))
    found = circles(root)
    assert [float(circle.get("data-value", "nan")) for circle in found] == values
    for circle in found:
        assert math.isfinite(cx(circle)) and math.isfinite(cy(circle))


# Names from users


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_names_are_escaped_and_the_drawings_still_parse(name: str) -> None:
    shown = name.replace("\x07", "\ufffd").replace("\x00", "\ufffd")  # XML cannot carry these
    drawings = [
        timeline_svg([Bar(name, name, 0.0, 1.0)], now=1.0),
        graph_svg([Node(name, name, name), Node("next", "next", "pending")], [(name, "next")]),
        metric_chart_svg(name, [Point(name, name, 1.0, status=name)]),
    ]
    for svg in drawings:
        assert "<script" not in svg
        root = parse(svg)
        assert not [
            element
            for element in root.iter()
            if "script" in element.tag or any(key.startswith("on") for key in element.attrib)
        ]
        titles = [element.text or "" for element in root.iter(f"{SVG}title")]
        assert any(title.startswith(shown) for title in titles)  # the whole name, as a tooltip
        data = [
            value
            for element in root.iter()
            for key, value in element.attrib.items()
            if key in ("data-step", "data-run-id", "data-status")
        ]
        assert shown in data
        classes = {word for element in root.iter() for word in element.get("class", "").split()}
        assert all(re.fullmatch(r"[a-z0-9-]+", word) for word in classes)


# Ticks and labels


def test_nice_ticks_step_by_one_two_or_five_and_cover_the_range() -> None:
    assert nice_ticks(0.0, 10.0) == [0, 2, 4, 6, 8, 10]
    assert nice_ticks(-0.3, 0.9) == pytest.approx([-0.4, -0.2, 0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ticks = nice_ticks(3.7, 1234.0)
    assert ticks[0] <= 3.7 and ticks[-1] >= 1234.0
    assert nice_ticks(-1.7e308, 1.7e308)[0] >= -1.8e308  # finite even near the largest float


def test_tick_labels_never_read_the_same() -> None:
    labels = format_ticks(nice_ticks(1_000_000.0, 1_000_010.0))
    assert len(set(labels)) == len(labels)


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0.0, "0"), (0.25, "0.25"), (12345.0, "12340"), (-3.5, "-3.5"), (1.2e9, "1.2e+09"),
     (3e-07, "3e-07"), (1 / 3, "0.3333")],
)  # fmt: skip
def test_numbers_read_with_four_significant_digits(value: float, shown: str) -> None:
    assert format_number(value) == shown


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0.004, "4 ms"), (0.0001, "< 1 ms"), (2.5, "2.5 s"), (28.0, "28 s"), (59.7, "1 min"),
     (252.0, "4 min 12 s"), (3780.0, "1 h 3 min"), (7200.0, "2 h"), (190800.0, "2 d 5 h")],
)  # fmt: skip
def test_durations_read_in_their_largest_units(seconds: float, shown: str) -> None:
    assert format_duration(seconds) == shown


def test_duration_ticks_are_round_in_their_unit() -> None:
    assert duration_ticks(28.0) == [0, 5, 10, 15, 20, 25, 30]
    assert [format_duration(tick) for tick in duration_ticks(1700.0)[1:3]] == ["5 min", "10 min"]


def test_truncate_counts_wide_characters_twice() -> None:
    assert truncate("abc", 3) == "abc"
    assert truncate("abcdef", 4) == "abc…"
    assert truncate("模型模型模型", 6) == "模型…"
