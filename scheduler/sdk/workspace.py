"""Azure ML's ``Workspace`` and ``Experiment`` on pipesched.

A workspace is where runs go: a pipesched config on this machine (embedded: the store is read
directly and a submitted run executes in a child process) or a daemon's REST API (a URL and a
token). Azure's identity arguments (subscription, resource group, auth) have nothing to name
here; they are accepted with a warning so that a notebook's first cell keeps working.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scheduler.core.errors import PipeschedError
from scheduler.sdk._warn import SdkError, ignore_given, ignored
from scheduler.sdk.datastore import Datastore
from scheduler.sdk.published import PipelineEndpoint, PublishedPipeline, submit_published
from scheduler.sdk.remote import RemoteBackend

if TYPE_CHECKING:
    from scheduler.definitions.config import Config
    from scheduler.sdk.backend import Backend
    from scheduler.sdk.runs import PipelineRun

ENV_URL = "PIPESCHED_URL"
ENV_TOKEN = "PIPESCHED_TOKEN"
_IDENTITY = "a pipesched workspace is a config file or a daemon URL, not an Azure subscription"


class Workspace:
    """A pipesched installation seen from Python: ``config=`` a pipesched.yaml (embedded), or
    ``url=`` + ``token=`` a daemon's API. Most notebooks call ``Workspace.from_config()``."""

    def __init__(
        self,
        subscription_id: str | None = None,
        resource_group: str | None = None,
        workspace_name: str | None = None,
        auth: Any = None,
        _location: str | None = None,
        _disable_service_check: bool = False,
        _workspace_id: str | None = None,
        sku: str = "basic",
        tags: dict[str, str] | None = None,
        _cloud: str = "AzureCloud",
        *,
        config: str | os.PathLike[str] | None = None,
        url: str | None = None,
        token: str | None = None,
    ) -> None:
        ignore_given(
            "Workspace",
            {
                "subscription_id": subscription_id,
                "resource_group": resource_group,
                "auth": auth,
                "_location": _location,
                "_workspace_id": _workspace_id,
                "tags": tags,
            },
            dict.fromkeys(
                ("subscription_id", "resource_group", "auth", "_location", "_workspace_id", "tags"),
                _IDENTITY,
            ),
        )
        self._config: Config | None = None
        self._backend: Backend
        if url is not None:
            if config is not None:
                raise SdkError("give either config= (embedded) or url= + token= (a daemon)")
            if not token:
                raise SdkError(
                    f"a daemon workspace needs token= as well as url={url!r}",
                    hint="create one with: pipesched token create NAME",
                )
            self._backend = RemoteBackend(url, token)
            self._name = workspace_name or url
        else:
            # lazy: a daemon workspace (url=) needs neither the config loader nor the store
            from scheduler.definitions.config import find_config, load_config
            from scheduler.sdk.embedded import EmbeddedBackend

            path = find_config(config)
            self._config = load_config(path)
            self._backend = EmbeddedBackend(path, self._config)
            self._name = workspace_name or path.parent.parent.name or str(path)

    # -- finding one ------------------------------------------------------------------------

    @staticmethod
    def from_config(
        path: str | os.PathLike[str] | None = None,
        auth: Any = None,
        _logger: Any = None,
        _file_name: str | None = None,
    ) -> Workspace:
        """With no ``path``: ``$PIPESCHED_URL`` + ``$PIPESCHED_TOKEN`` (a daemon), else the CLI's
        config search (``$PIPESCHED_CONFIG``, ./config/pipesched.yaml, /etc/pipesched/...).
        ``path`` may be a pipesched.yaml or a folder holding config/pipesched.yaml."""
        ignore_given("Workspace.from_config", {"auth": auth}, {"auth": _IDENTITY})
        if path is None and _file_name is None:
            url = os.environ.get(ENV_URL)
            if url:
                return Workspace(url=url, token=os.environ.get(ENV_TOKEN))
            return Workspace(config=None)
        return Workspace(config=_config_file(Path(path or "."), _file_name))

    @staticmethod
    def get(
        name: str,
        auth: Any = None,
        subscription_id: str | None = None,
        resource_group: str | None = None,
        location: str | None = None,
        cloud: str = "AzureCloud",
        id: str | None = None,
    ) -> Workspace:
        """Azure finds a workspace by name in a subscription; here the config search decides
        (``Workspace.from_config()``)."""
        ignored(
            "Workspace.get",
            "name",
            "pipesched has no named workspaces; Workspace.from_config() finds the workspace",
        )
        ignore_given(
            "Workspace.get",
            {
                "auth": auth,
                "subscription_id": subscription_id,
                "resource_group": resource_group,
                "location": location,
                "id": id,
            },
            dict.fromkeys(
                ("auth", "subscription_id", "resource_group", "location", "id"), _IDENTITY
            ),
        )
        return Workspace.from_config()

    # -- what it holds ----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def datastores(self) -> dict[str, Datastore]:
        return {name: Datastore(self, name) for name in self._backend.datastore_names()}

    def get_default_datastore(self) -> Datastore:
        return Datastore(self, "default")

    def _datastore_path(self, name: str) -> Path | None:
        return self._backend.datastore_path(name)

    @property
    def compute_targets(self) -> dict[str, str]:
        """Compute target names (from the config; a remote daemon's are not listed: only
        ``local`` is known to exist)."""
        names = list(self._config.compute) if self._config is not None else ["local"]
        return {name: name for name in names}

    @property
    def experiments(self) -> dict[str, Experiment]:
        """Experiments that have runs, by name."""
        names: dict[str, Experiment] = {}
        for run in self._backend.list_runs(limit=0):
            names.setdefault(run["experiment"], Experiment(self, run["experiment"]))
        return names

    def _pipeline_run(
        self, experiment: str, run_id: str, data: dict[str, Any] | None = None
    ) -> PipelineRun:
        """The handle of run ``run_id`` of ``experiment``. Published pipelines, runs, pipelines
        and schedules hold their workspace and make run handles through it, so none of them
        imports this module (which imports theirs)."""
        return Experiment(self, experiment)._run(run_id, data)

    def __repr__(self) -> str:
        return f"Workspace.create(name={self.name!r}, {self._backend.describe()})"


def _config_file(path: Path, file_name: str | None) -> Path:
    """The pipesched.yaml a ``from_config(path=...)`` means; an Azure config.json is refused
    with what to point at instead."""
    if file_name is not None:
        path = path / file_name if path.is_dir() else path.parent / file_name
    if path.is_dir():
        for candidate in (path / "config" / "pipesched.yaml", path / "pipesched.yaml"):
            if candidate.is_file():
                return candidate
        for candidate in (path / "config.json", path / ".azureml" / "config.json"):
            if candidate.is_file():
                _refuse_azure(candidate)
        raise PipeschedError(
            f"no pipesched config in {path} (looked for config/pipesched.yaml and pipesched.yaml)",
            hint="pass the path of a pipesched.yaml",
        )
    if path.suffix == ".json":
        _refuse_azure(path)
    return path


def _refuse_azure(path: Path) -> None:
    raise SdkError(
        f"{path} is an Azure ML workspace config (subscription, resource group); pipesched "
        "needs its own config",
        hint="Workspace.from_config(path='config/pipesched.yaml'), or "
        "Workspace(url='http://host:8790', token='pst_...') for a daemon",
    )


class Experiment:
    """A named group of runs (a run's ``experiment``). Exists as soon as a run names it."""

    def __init__(
        self,
        workspace: Workspace,
        name: str,
        _skip_name_validation: bool = False,
        _id: str | None = None,
        _archived_time: str | None = None,
        _create_in_cloud: bool = True,
        _experiment_dto: Any = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise SdkError("an experiment needs a name", hint='Experiment(ws, "training")')
        self.workspace = workspace
        self.name = name
        self.id = name

    def submit(self, config: Any, tags: dict[str, str] | None = None, **kwargs: Any) -> PipelineRun:
        """Run ``config``: a Pipeline (kwargs ``pipeline_parameters``, ``regenerate_outputs``,
        ``continue_on_step_failure``), or a PublishedPipeline / PipelineEndpoint."""
        ignore_given("Experiment.submit", {"tags": tags}, {"tags": "runs carry no tags here"})
        parameters = dict(kwargs.pop("pipeline_parameters", None) or {})
        regenerate = bool(kwargs.pop("regenerate_outputs", False))
        continue_on_failure = kwargs.pop("continue_on_step_failure", None)
        for argument in kwargs:
            ignored("Experiment.submit", argument, "pipesched's submit does not know it")
        if isinstance(config, PublishedPipeline | PipelineEndpoint):
            version = config.version if isinstance(config, PublishedPipeline) else None
            run_id = submit_published(
                self.workspace,
                config.name,
                version,
                experiment=self.name,
                parameters=parameters,
                continue_on_step_failure=continue_on_failure,
                regenerate_outputs=regenerate,
            )
        elif hasattr(config, "_submit_to"):
            run_id = config._submit_to(self.name, parameters, regenerate, continue_on_failure)
        else:
            raise SdkError(
                f"cannot submit a {type(config).__name__}",
                hint="submit a Pipeline, a PublishedPipeline or a PipelineEndpoint",
            )
        return self._run(run_id)

    def get_runs(
        self,
        type: str | None = None,
        tags: Any = None,
        properties: Any = None,
        include_children: bool = False,
    ) -> Iterator[PipelineRun]:
        """This experiment's runs, newest first (all of them: runs carry no tags or
        properties here, so ``tags``/``properties`` filters are ignored with a warning)."""
        ignore_given(
            "Experiment.get_runs",
            {"tags": tags, "properties": properties},
            dict.fromkeys(("tags", "properties"), "runs carry no tags or properties here"),
        )

        for run in self.workspace._backend.list_runs(experiment=self.name, limit=0):
            yield self._run(run["id"], run)

    def _run(self, run_id: str, data: dict[str, Any] | None = None) -> PipelineRun:
        # lazy: runs loads SQLAlchemy (watch reads the store's records); a workspace alone must not
        from scheduler.sdk.runs import PipelineRun

        return PipelineRun(self, run_id, _data=data)

    @staticmethod
    def list(workspace: Workspace, *args: Any, **kwargs: Any) -> list[Experiment]:
        return list(workspace.experiments.values())

    def __repr__(self) -> str:
        return f"Experiment(Name: {self.name}, Workspace: {self.workspace.name})"
