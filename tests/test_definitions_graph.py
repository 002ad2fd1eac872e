"""The DAG of a pipeline: order, upstream/downstream, cycles."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.definitions import load_pipeline
from scheduler.definitions.graph import Graph, build_graph, find_cycle

try:
    from fixtures_definitions import make_config, write_pipeline
except ImportError:  # tests/ became a package
    from tests.fixtures_definitions import make_config, write_pipeline

DIAMOND = """\
data: {a_out: {}, b_out: {}, c_out: {}}
steps:
  d: {type: python_script, script: prep.py, inputs: [b_out, c_out]}
  c: {type: python_script, script: prep.py, outputs: [c_out], arguments: ["${{data.a_out}}"]}
  b: {type: python_script, script: prep.py, outputs: [b_out], inputs: [a_out]}
  a: {type: python_script, script: prep.py, outputs: [a_out]}
  e: {type: python_script, script: prep.py, depends_on: [a]}
"""


@pytest.fixture
def diamond(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Graph:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    config = make_config(tmp_path)
    return build_graph(load_pipeline(write_pipeline(config, "p", DIAMOND), config))


def test_diamond_order_respects_edges_and_file_order(diamond: Graph) -> None:
    assert diamond.topological_order() == ["a", "c", "b", "d", "e"]


def test_upstream_and_downstream_are_transitive(diamond: Graph) -> None:
    assert diamond.upstream("d") == {"a", "b", "c"}
    assert diamond.downstream("a") == {"b", "c", "d", "e"}
    assert diamond.upstream("a") == set()
    assert diamond.predecessors("d") == {"b", "c"}


def test_ready_steps_wait_for_their_predecessors(diamond: Graph) -> None:
    assert diamond.ready(finished=[]) == ["a"]
    assert diamond.ready(finished=["a"]) == ["c", "b", "e"]
    assert diamond.ready(finished=["a", "b"], started=["c"]) == ["e"]


def test_cycle_is_found_as_a_path() -> None:
    graph = Graph(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "b")])
    assert find_cycle(graph) == ["b", "c", "b"]
    with pytest.raises(ValueError, match="b -> c -> b"):
        graph.topological_order()


def test_self_dependency_is_a_cycle() -> None:
    assert find_cycle(Graph(["a"], [("a", "a")])) == ["a", "a"]


def test_acyclic_graph_has_no_cycle(diamond: Graph) -> None:
    assert find_cycle(diamond) is None
