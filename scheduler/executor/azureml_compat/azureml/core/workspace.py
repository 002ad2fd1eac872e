"""``Workspace`` in a step: what ``run.experiment.workspace`` and ``Workspace.from_config()``
give — the datastores of the pipesched installation the step runs under."""

from __future__ import annotations

from typing import Any, NoReturn

from scheduler.runtime import StepWorkspace

from .. import _pipesched
from .datastore import Datastore


class Workspace(StepWorkspace, metaclass=_pipesched.Explaining):
    """The step's workspace. Every way Azure ML offers to get one gives this one."""

    def __init__(
        self,
        subscription_id: str | None = None,
        resource_group: str | None = None,
        workspace_name: str | None = None,
        auth: Any = None,
        _location: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.name = workspace_name or "pipesched"
        self.subscription_id = subscription_id or ""
        self.resource_group = resource_group or ""
        self.location = _location or "local"

    @classmethod
    def from_config(
        cls, path: str | None = None, auth: Any = None, _logger: Any = None, _file_name: Any = None
    ) -> Workspace:
        return cls()

    @classmethod
    def get(cls, name: str | None = None, *args: Any, **kwargs: Any) -> Workspace:
        return cls(workspace_name=name)

    @property
    def datastores(self) -> dict[str, Datastore]:
        return {name: Datastore(self, name) for name in _pipesched.datastore_folders()}

    def get_default_datastore(self) -> Datastore:
        return Datastore(self)

    def __repr__(self) -> str:
        return f"Workspace.create(name={self.name!r})"

    def __getattr__(self, name: str) -> NoReturn:
        raise _pipesched.attribute_error(type(self).__name__, name)
