"""``Experiment`` in a step: ``run.experiment``, its ``.name`` and its ``.workspace``."""

from __future__ import annotations

from typing import Any

from scheduler.runtime import Experiment as _RuntimeExperiment

from .workspace import Workspace


class Experiment(_RuntimeExperiment):
    """The experiment's name (a ``str``, as ``scheduler.runtime`` gives it), with Azure ML's
    ``.name`` and ``.workspace``. ``Experiment(ws, "name")`` works as in Azure ML."""

    __slots__ = ()

    def __new__(cls, workspace: Any = None, name: str | None = None, **kwargs: Any) -> Experiment:
        if name is None and isinstance(workspace, str):
            workspace, name = None, workspace
        return super().__new__(cls, name or "")

    @property
    def workspace(self) -> Workspace:
        return Workspace()
