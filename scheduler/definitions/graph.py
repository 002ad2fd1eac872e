"""The DAG of a pipeline: which step runs after which, in what order, and what a failure skips.

Edges come from data (the producer of X runs before every step that consumes X) and from
``depends_on``. Order and cycle search are written out rather than taken from ``graphlib``:
we want ties broken by the order of the steps in the file (so ``show`` and logs read in the order
users wrote) and a cycle reported as a path ``a -> b -> a`` starting at the first step written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from scheduler.definitions.pipeline import Pipeline


class Graph:
    """Steps as nodes (in file order) and ``upstream -> downstream`` edges."""

    def __init__(self, nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> None:
        self.nodes: list[str] = list(dict.fromkeys(nodes))
        self._index = {node: i for i, node in enumerate(self.nodes)}
        self._parents: dict[str, set[str]] = {node: set() for node in self.nodes}
        self._children: dict[str, set[str]] = {node: set() for node in self.nodes}
        for up, down in edges:
            if up not in self._index or down not in self._index:
                raise KeyError(f"edge {up!r} -> {down!r} names a step that is not in the graph")
            self._parents[down].add(up)
            self._children[up].add(down)

    def predecessors(self, step: str) -> set[str]:
        """Steps that ``step`` directly waits for."""
        return set(self._parents[step])

    def successors(self, step: str) -> set[str]:
        """Steps that directly wait for ``step``."""
        return set(self._children[step])

    def upstream(self, step: str) -> set[str]:
        """Every step that must finish before ``step`` (transitively)."""
        return self._reach(step, self._parents)

    def downstream(self, step: str) -> set[str]:
        """Every step that waits on ``step`` (transitively): what its failure skips."""
        return self._reach(step, self._children)

    def ready(self, finished: Iterable[str], started: Iterable[str] = ()) -> list[str]:
        """Steps not yet started whose predecessors are all in ``finished``, in file order."""
        done, begun = set(finished), set(started) | set(finished)
        return [n for n in self.nodes if n not in begun and self._parents[n] <= done]

    def topological_order(self) -> list[str]:
        """Steps in an order that respects every edge; ties keep file order. Raises ValueError
        naming a cycle when there is one."""
        remaining = {node: len(self._parents[node]) for node in self.nodes}
        order: list[str] = []
        ready = [n for n in self.nodes if remaining[n] == 0]
        while ready:
            node = min(ready, key=self._index.__getitem__)
            ready.remove(node)
            order.append(node)
            for child in self._children[node]:
                remaining[child] -= 1
                if remaining[child] == 0:
                    ready.append(child)
        if len(order) != len(self.nodes):
            cycle = find_cycle(self) or []
            raise ValueError(f"steps form a cycle: {' -> '.join(cycle)}")
        return order

    def _reach(self, start: str, links: dict[str, set[str]]) -> set[str]:
        seen: set[str] = set()
        stack = list(links[start])
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack.extend(links[node])
        return seen

    def ordered(self, nodes: Iterable[str]) -> list[str]:
        """``nodes`` sorted in file order."""
        return sorted(nodes, key=self._index.__getitem__)


def find_cycle(graph: Graph) -> list[str] | None:
    """A cycle as ``[a, b, a]`` (each step runs before the next), or None. Searches from the
    steps in file order, so the same file always names the same cycle."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    for root in graph.nodes:
        if root in state:
            continue
        path: list[str] = [root]
        iters = [iter(graph.ordered(graph.successors(root)))]
        state[root] = 1
        while iters:
            child = next(iters[-1], None)
            if child is None:
                state[path.pop()] = 2
                iters.pop()
                continue
            if state.get(child) == 1:
                return [*path[path.index(child) :], child]
            if child not in state:
                state[child] = 1
                path.append(child)
                iters.append(iter(graph.ordered(graph.successors(child))))
    return None


def build_graph(pipeline: Pipeline) -> Graph:
    """The DAG of a validated pipeline."""
    return graph_from_steps(
        {
            step_id: (step.produces(), step.consumes(), step.depends_on)
            for step_id, step in pipeline.steps.items()
        }
    )


def graph_from_steps(
    steps: Mapping[str, tuple[Iterable[str], Iterable[str], Iterable[str]]],
) -> Graph:
    """A graph from ``{step: (produces, consumes, depends_on)}``; names that no step produces
    and unknown steps in depends_on are left out (validation reports them)."""
    producer: dict[str, str] = {}
    for step_id, (produces, _, _) in steps.items():
        for data in produces:
            producer.setdefault(data, step_id)
    edges: list[tuple[str, str]] = []
    for step_id, (_, consumes, depends_on) in steps.items():
        for data in consumes:
            up = producer.get(data)
            if up is not None and up != step_id:
                edges.append((up, step_id))
        edges.extend((dep, step_id) for dep in depends_on if dep in steps)
    return Graph(steps, edges)
