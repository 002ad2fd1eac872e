"""A step's outputs as Azure ML's ``PortDataReference`` describes them: each output's folder, the
datastore that holds it and its path inside that datastore.

Only the machine that runs the steps knows where its datastores are, so the daemon answers this
for a remote workspace (``GET /api/v1/runs/{run}/steps/{step}/outputs``) and an embedded
workspace asks this module directly: both get the same ``datastore_name``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from scheduler.core.errors import NotFound
from scheduler.services.runs import get_run

if TYPE_CHECKING:
    from collections.abc import Mapping

    from scheduler.definitions.config import Config
    from scheduler.store import Store


@dataclass(frozen=True)
class StepOutput:
    """One output of a step run: ``path`` is absolute on the machine that ran it."""

    name: str
    path: str
    datastore_name: str | None
    path_on_datastore: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "datastore_name": self.datastore_name,
            "path_on_datastore": self.path_on_datastore,
        }


def step_outputs(config: Config, store: Store, run_ref: str, step: str) -> list[StepOutput]:
    """The outputs of step ``step`` (its id) of run ``run_ref`` (any unique prefix), in the
    order the step recorded them; NotFound when the run has no such step."""
    detail = get_run(store, run_ref)
    latest = detail.latest_attempts()
    if step not in latest:
        known = ", ".join(latest) or "none"
        raise NotFound(f"run {detail.run.id} has no step {step!r}", hint=f"steps: {known}")
    roots = {name: store_config.path for name, store_config in config.datastores.items()}
    return [locate(name, path, roots) for name, path in latest[step].outputs.items()]


def locate(name: str, path: str, datastores: Mapping[str, Path]) -> StepOutput:
    """Which datastore holds ``path`` (the deepest one, should datastores nest) and where in
    it; a folder outside every datastore keeps its whole path and no datastore."""
    folder = Path(path)
    best: tuple[int, str, Path] | None = None
    for store_name, root in datastores.items():
        if folder.is_relative_to(root) and (best is None or len(root.parts) > best[0]):
            best = (len(root.parts), store_name, root)
    if best is None:
        return StepOutput(name, path, None, PurePosixPath(folder).as_posix())
    _, store_name, root = best
    inside = PurePosixPath(folder.relative_to(root)).as_posix()
    return StepOutput(name, path, store_name, inside)
