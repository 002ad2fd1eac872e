"""Azure ML's ``PublishedPipeline`` and ``PipelineEndpoint``.

A published pipeline here is one immutable version of a pipeline (``pipesched publish``): its id
is ``NAME@VERSION``, the form schedules name it by. A pipeline endpoint numbers its own versions
"0", "1", ... in the order they were added, each a published pipeline of any name; its URL runs
the default version. Every pipeline published under a name is also a version of the endpoint of
that name, so ``PipelineEndpoint.get(ws, name=...)`` finds what ``pipeline.publish`` made.
"""

from __future__ import annotations

import builtins
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scheduler.core.errors import NotFound, ParameterError
from scheduler.sdk._warn import IgnoredArgumentWarning, SdkError, ignore_given, ignored
from scheduler.sdk.datapath import path_default

if TYPE_CHECKING:
    from scheduler.sdk.runs import PipelineRun
    from scheduler.sdk.workspace import Workspace


def _as_value(value: Any) -> Any:
    """A parameter value as a run takes it: a DataPath or dataset as its datastore:// URI."""
    path = path_default(value)
    return path if path is not None else value


def submit_published(
    workspace: Workspace,
    name: str,
    version: str | None,
    *,
    experiment: str,
    parameters: dict[str, Any],
    continue_on_step_failure: bool | None = None,
    regenerate_outputs: bool = False,
) -> str:
    """Run a published version (None: the endpoint's default); the run id. With
    ``regenerate_outputs`` every step runs, reusing nothing.

    As Azure does, parameters the pipeline does not declare are left out, with one warning
    naming them (the REST API refuses them: a typo there must not run on default data)."""
    given = {name: _as_value(value) for name, value in parameters.items()}
    dropped: list[str] = []
    while True:
        try:
            run_id = workspace._backend.submit_published(
                name,
                version,
                experiment=experiment,
                parameters=given,
                continue_on_step_failure=continue_on_step_failure,
                regenerate_outputs=regenerate_outputs,
            )
            break
        except ParameterError as exc:  # checked before any run is recorded
            if exc.name not in given or "unknown parameter" not in exc.message:
                raise
            del given[exc.name]
            dropped.append(exc.name)
    if dropped:
        warnings.warn(
            f"pipeline '{name}' declares no parameter {', '.join(map(repr, dropped))}: "
            "left out of the run, as Azure ML does",
            IgnoredArgumentWarning,
            stacklevel=3,
        )
    return run_id


class PublishedPipeline:
    """One published version of a pipeline."""

    def __init__(self, workspace: Workspace, data: dict[str, Any]) -> None:
        self._workspace = workspace
        self._data = dict(data)

    @classmethod
    def _from_json(cls, workspace: Workspace, data: dict[str, Any]) -> PublishedPipeline:
        """From the backend's PublishedVersion JSON (``id``, ``pipeline``, ``version``...)."""
        return cls(workspace, data)

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def name(self) -> str:
        return self._data["pipeline"]

    @property
    def version(self) -> str:
        return self._data["version"]

    @property
    def description(self) -> str | None:
        return self._data.get("description")

    @property
    def status(self) -> str:
        return "Active"

    @property
    def endpoint(self) -> str:
        """The absolute URL that runs this version."""
        return self._workspace._backend.endpoint_url(self.name, self.version)

    @property
    def is_default(self) -> bool:
        return bool(self._data.get("is_default"))

    def submit(
        self,
        workspace: Workspace,
        experiment_name: str,
        pipeline_parameters: dict[str, Any] | None = None,
        _workflow_provider: Any = None,
        _service_endpoint: Any = None,
        parent_run_id: str | None = None,
        continue_on_step_failure: bool | None = None,
        *,
        regenerate_outputs: bool = False,
    ) -> PipelineRun:
        """Run this version under ``experiment_name``; ``regenerate_outputs`` (pipesched's,
        as ``Pipeline.submit``'s) runs every step, reusing nothing."""
        ignore_given(
            "PublishedPipeline.submit",
            {"parent_run_id": parent_run_id},
            {"parent_run_id": "runs have no parent runs here"},
        )
        run_id = submit_published(
            workspace,
            self.name,
            self.version,
            experiment=experiment_name,
            parameters=dict(pipeline_parameters or {}),
            continue_on_step_failure=continue_on_step_failure,
            regenerate_outputs=regenerate_outputs,
        )
        return workspace._pipeline_run(experiment_name, run_id)

    def _start(
        self,
        experiment_name: str,
        parameters: dict[str, Any],
        pipeline_version: Any,
        continue_on_step_failure: bool | None = None,
        regenerate_outputs: bool = False,
    ) -> str:
        """Run this version (``pipeline_version`` is an endpoint's: ignored here); the run id."""
        ignore_given(
            "Experiment.submit",
            {"pipeline_version": pipeline_version},
            {"pipeline_version": "a published pipeline is one version already"},
        )
        return submit_published(
            self._workspace,
            self.name,
            self.version,
            experiment=experiment_name,
            parameters=parameters,
            continue_on_step_failure=continue_on_step_failure,
            regenerate_outputs=regenerate_outputs,
        )

    @staticmethod
    def get(
        workspace: Workspace, id: str, _workflow_provider: Any = None, _service_endpoint: Any = None
    ) -> PublishedPipeline:
        """By id, ``NAME@VERSION`` (a bare NAME: its endpoint's default version)."""
        name, _, version = id.partition("@")
        for data in workspace._backend.list_published(name):
            if data["version"] == version or (not version and data.get("is_default")):
                return PublishedPipeline(workspace, data)
        raise NotFound(
            f"no published pipeline {id!r}", hint="ids read NAME@VERSION; see: pipesched pipelines"
        )

    @staticmethod
    def list(
        workspace: Workspace, active_only: bool = True, _service_endpoint: Any = None
    ) -> list[PublishedPipeline]:
        return [PublishedPipeline(workspace, d) for d in workspace._backend.list_published()]

    def enable(self) -> None:
        ignored("PublishedPipeline", "enable", "published versions are always active")

    def disable(self) -> None:
        ignored("PublishedPipeline", "disable", "published versions are always active")

    def __repr__(self) -> str:
        return f"PublishedPipeline(Name: {self.name}, Id: {self.id}, Endpoint: {self.endpoint})"


@dataclass(frozen=True)
class PipelineIdVersion:
    """One version of an endpoint, as Azure's ``list_versions`` returns them: the endpoint's
    own number ``version`` ("0", "1"...), and the published pipeline it runs."""

    pipeline_id: str
    version: str
    pipeline: PublishedPipeline


class PipelineEndpoint:
    """A pipeline endpoint: versions "0", "1"... (each a published pipeline, of any name), the
    default one its URL runs, and an ``id`` that a rename (``set_name``) keeps."""

    def __init__(self, workspace: Workspace, name: str, **kwargs: Any) -> None:
        self._workspace = workspace
        self.name = name
        self._data: dict[str, Any] | None = kwargs.get("_data")

    # -- what it is ---------------------------------------------------------------------------

    def _info(self) -> dict[str, Any]:
        """The endpoint as the backend has it now (another session may have changed it)."""
        for data in self._workspace._backend.list_endpoints():
            if data["name"] == self.name or (self._data and data["id"] == self._data["id"]):
                self._data, self.name = data, data["name"]
                return data
        raise NotFound(f"no pipeline endpoint {self.name!r}")

    @property
    def id(self) -> str:
        return (self._data or self._info())["id"]

    @property
    def status(self) -> str:
        return "Active"

    @property
    def endpoint(self) -> str:
        """Azure's URL form: POST runs the default version; ``+ "/" + version`` runs that
        version; ``endpoint.split("Id", 1)[0] + "Name?name=" + name`` finds it by name."""
        return self._workspace._backend.endpoint_submit_url(self.id)

    @property
    def default_version(self) -> str | None:
        return self._info()["default_version"]

    def get_default_version(self) -> str | None:
        return self.default_version

    @property
    def description(self) -> str | None:
        info = self._info()
        if info.get("description"):
            return info["description"]
        default = self.get_pipeline() if info["default_version"] is not None else None
        return default.description if default is not None else None

    # -- making and finding -------------------------------------------------------------------

    @staticmethod
    def publish(
        workspace: Workspace,
        name: str,
        description: str,
        pipeline: Any,
        _workflow_provider: Any = None,
        _service_endpoint: Any = None,
    ) -> PipelineEndpoint:
        """An endpoint named ``name`` whose version "0" (its default) is ``pipeline``: a
        Pipeline (published now under ``name``) or a PublishedPipeline of any name. Publishing
        a name that exists adds ``pipeline`` to that endpoint (Azure refuses), so a notebook
        can run again."""
        published = _published(pipeline, name, description)
        data = workspace._backend.add_endpoint_version(
            name, published.name, published.version, create=True, description=description
        )
        return PipelineEndpoint(workspace, name, _data=data)

    @staticmethod
    def get(
        workspace: Workspace,
        id: str | None = None,
        name: str | None = None,
        _workflow_provider: Any = None,
        _service_endpoint: Any = None,
    ) -> PipelineEndpoint:
        """By ``id`` (stable across renames) or ``name``."""
        if not (id or name):
            raise SdkError("PipelineEndpoint.get needs id= or name=")
        for data in workspace._backend.list_endpoints():
            if (name is not None and data["name"] == name) or (
                id is not None and id in (data["id"], data["name"])
            ):
                return PipelineEndpoint(workspace, data["name"], _data=data)
        raise NotFound(
            f"no pipeline endpoint {name or id!r}",
            hint="make one with PipelineEndpoint.publish(ws, name, description, pipeline), "
            "or pipeline.publish(name=...)",
        )

    @staticmethod
    def list(
        workspace: Workspace, active_only: bool = True, **kwargs: Any
    ) -> builtins.list[PipelineEndpoint]:
        return [
            PipelineEndpoint(workspace, data["name"], _data=data)
            for data in workspace._backend.list_endpoints()
        ]

    @staticmethod
    def get_all(
        workspace: Workspace, active_only: bool = True, **kwargs: Any
    ) -> builtins.list[PipelineEndpoint]:
        return PipelineEndpoint.list(workspace, active_only)

    # -- versions -----------------------------------------------------------------------------

    def add(self, pipeline: Any) -> None:
        """Add a published pipeline (of any name; a Pipeline is published under this
        endpoint's name first) as the next version; one already here keeps its number."""
        published = _published(pipeline, self.name, None)
        self._data = self._workspace._backend.add_endpoint_version(
            self.name, published.name, published.version, create=False, description=None
        )

    def add_default(self, pipeline: Any) -> None:
        self.set_default(pipeline)

    def set_default(self, pipeline: Any) -> None:
        """Make ``pipeline`` (a PublishedPipeline of any name, added first when it is not a
        version yet) the default."""
        published = _published(pipeline, self.name, None)
        self._data = self._workspace._backend.set_endpoint_default(
            self.name, published.name, published.version
        )

    def set_default_version(self, version: str) -> None:
        """Make the endpoint's version ``version`` ("0", "1"...) the default."""
        entry = self._entry(version)
        self._data = self._workspace._backend.set_endpoint_default(
            self.name, entry["pipeline"], entry["pipeline_version"]
        )

    def set_name(self, name: str) -> None:
        """Rename the endpoint; its id, versions and default stay."""
        self._data = self._workspace._backend.rename_endpoint(self.name, name)
        self.name = name

    def _entry(self, version: Any) -> dict[str, Any]:
        info = self._info()
        wanted = str(version).strip() if version is not None else info["default_version"]
        for entry in info["versions"]:
            if entry["version"] == wanted:
                return entry
        have = ", ".join(e["version"] for e in info["versions"]) or "none"
        raise NotFound(
            f"pipeline endpoint '{self.name}' has no version {wanted!r} (it has: {have})",
            hint="an endpoint numbers its versions 0, 1, 2... in the order they were added",
        )

    def _pipeline_of(self, entry: dict[str, Any]) -> PublishedPipeline:
        for data in self._workspace._backend.list_published(entry["pipeline"]):
            if data["version"] == entry["pipeline_version"]:
                return PublishedPipeline(self._workspace, data)
        raise NotFound(f"no published pipeline {entry['pipeline_id']!r}")

    def get_pipeline(self, version: str | None = None) -> PublishedPipeline:
        """The published pipeline of version ``version`` ("0", "1"...; None: the default)."""
        return self._pipeline_of(self._entry(version))

    def list_pipelines(self, active_only: bool = True) -> builtins.list[PublishedPipeline]:
        return [self._pipeline_of(e) for e in self._info()["versions"]]

    def get_all_pipelines(self, active_only: bool = True) -> builtins.list[PublishedPipeline]:
        return self.list_pipelines(active_only)

    def list_versions(self) -> builtins.list[PipelineIdVersion]:
        return [
            PipelineIdVersion(e["pipeline_id"], e["version"], self._pipeline_of(e))
            for e in self._info()["versions"]
        ]

    def get_all_versions(self, active_only: bool = True) -> builtins.list[PipelineIdVersion]:
        return self.list_versions()

    def _start(
        self,
        experiment_name: str,
        parameters: dict[str, Any],
        pipeline_version: Any,
        continue_on_step_failure: bool | None = None,
        regenerate_outputs: bool = False,
    ) -> str:
        """Run version ``pipeline_version`` (None: the default); the run id."""
        entry = self._entry(pipeline_version)
        return submit_published(
            self._workspace,
            entry["pipeline"],
            entry["pipeline_version"],
            experiment=experiment_name,
            parameters=parameters,
            continue_on_step_failure=continue_on_step_failure,
            regenerate_outputs=regenerate_outputs,
        )

    def submit(
        self,
        experiment_name: str,
        pipeline_parameters: dict[str, Any] | None = None,
        parent_run_id: str | None = None,
        pipeline_version: str | None = None,
        *,
        regenerate_outputs: bool = False,
    ) -> PipelineRun:
        """Run the default version (or ``pipeline_version``: "0", "1"...) under
        ``experiment_name``; ``regenerate_outputs`` (pipesched's) runs every step, reusing
        nothing."""
        ignore_given(
            "PipelineEndpoint.submit",
            {"parent_run_id": parent_run_id},
            {"parent_run_id": "runs have no parent runs here"},
        )
        run_id = self._start(
            experiment_name,
            dict(pipeline_parameters or {}),
            pipeline_version,
            regenerate_outputs=regenerate_outputs,
        )
        return self._workspace._pipeline_run(experiment_name, run_id)

    def enable(self) -> None:
        ignored("PipelineEndpoint", "enable", "endpoints are always active")

    def disable(self) -> None:
        ignored("PipelineEndpoint", "disable", "endpoints are always active")

    def __repr__(self) -> str:
        return f"PipelineEndpoint(Name: {self.name}, Endpoint: {self.endpoint})"


def _published(pipeline: Any, name: str, description: str | None) -> PublishedPipeline:
    """A PublishedPipeline as it is; a Pipeline published now under ``name``."""
    if isinstance(pipeline, PublishedPipeline):
        return pipeline
    if hasattr(pipeline, "publish"):
        published: PublishedPipeline = pipeline.publish(name=name, description=description)
        return published
    raise SdkError(
        f"cannot add a {type(pipeline).__name__} to a pipeline endpoint",
        hint="give a Pipeline or a PublishedPipeline",
    )
