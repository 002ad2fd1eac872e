"""The step graph of a pipeline as it ran: its edges, read back from the definition the store
kept with the run's content hash, for front ends that draw it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from scheduler.core.errors import DefinitionError, DefinitionErrors, PipeschedError
from scheduler.definitions import load_pipeline
from scheduler.definitions.graph import Graph, build_graph
from scheduler.definitions.pipeline import Pipeline

if TYPE_CHECKING:
    from scheduler.definitions.config import Config
    from scheduler.store import Store

# The stored definition leaves out where its file was; the graph does not need it.
_NOWHERE = Path("/")


def definition_edges(definition: dict[str, Any] | None) -> list[tuple[str, str]]:
    """``(upstream, downstream)`` step pairs of a stored definition, in topological order; none
    when there is no definition or it no longer validates (a definition from an older
    version): the steps are still drawn, unlinked."""
    if not definition:
        return []
    try:
        pipeline = Pipeline.model_validate(
            {**definition, "file": _NOWHERE / "pipeline.yaml", "directory": _NOWHERE}
        )
    except (ValidationError, TypeError, ValueError):
        return []
    return _edges(build_graph(pipeline))


def _edges(graph: Graph) -> list[tuple[str, str]]:
    """Every edge, upstream steps in topological order."""
    order = graph.topological_order()
    return [(up, down) for up in order for down in graph.ordered(graph.successors(up))]


def run_edges(store: Store, pipeline: str, content_hash: str) -> list[tuple[str, str]]:
    """The edges of the pipeline content a run ran."""
    return definition_edges(store.pipeline_definition(pipeline, content_hash))


def pipeline_steps(definition: dict[str, Any] | None) -> list[tuple[str, str]]:
    """``(step id, display name)`` of a stored definition, in its order."""
    steps = (definition or {}).get("steps") or {}
    if not isinstance(steps, dict):
        return []
    return [
        (str(step_id), str((body or {}).get("display_name") or step_id))
        for step_id, body in steps.items()
    ]


def working_copy_graph(
    config: Config, path: Path
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]] | None:
    """``(steps, edges)`` of a working copy as it loads now, or None when it does not load."""
    try:
        pipeline = load_pipeline(path, config)
    except (DefinitionErrors, DefinitionError, PipeschedError):
        return None
    steps = [(step_id, step.display_name or step_id) for step_id, step in pipeline.steps.items()]
    return steps, _edges(build_graph(pipeline))
