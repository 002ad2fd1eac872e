"""Azure ML's ``PublishedPipeline`` and ``PipelineEndpoint``.

A published pipeline here is one immutable version of a pipeline (``pipesched publish``): its id
is ``NAME@VERSION``, the form schedules name it by. A pipeline endpoint is the pipeline's name:
its REST URL runs the default version (the first published unless changed), as an Azure
PipelineEndpoint runs its default.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scheduler.core.errors import NotFound
from scheduler.sdk._warn import SdkError, ignore_given, ignored

if TYPE_CHECKING:
    from scheduler.sdk.runs import PipelineRun
    from scheduler.sdk.workspace import Workspace


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
    ``regenerate_outputs`` every step runs, reusing nothing."""
    return workspace._backend.submit_published(
        name,
        version,
        experiment=experiment,
        parameters=parameters,
        continue_on_step_failure=continue_on_step_failure,
        regenerate_outputs=regenerate_outputs,
    )


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
    """One version of an endpoint, as Azure's ``list_versions`` returns them."""

    pipeline_id: str
    version: str


class PipelineEndpoint:
    """A pipeline's endpoint: its published versions and the default one that its URL runs."""

    def __init__(self, workspace: Workspace, name: str, **kwargs: Any) -> None:
        self._workspace = workspace
        self.name = name

    @property
    def id(self) -> str:
        return self.name

    @property
    def status(self) -> str:
        return "Active"

    @property
    def endpoint(self) -> str:
        return self._workspace._backend.endpoint_url(self.name, None)

    def _versions(self) -> list[dict[str, Any]]:
        return self._workspace._backend.list_published(self.name)

    @property
    def default_version(self) -> str | None:
        return next((d["version"] for d in self._versions() if d.get("is_default")), None)

    def get_default_version(self) -> str | None:
        return self.default_version

    @property
    def description(self) -> str | None:
        default = self.default_version
        return next(
            (d.get("description") for d in self._versions() if d["version"] == default), None
        )

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
        """An endpoint named ``name`` whose first version is ``pipeline`` (a Pipeline, published
        now under ``name``, or a PublishedPipeline of that name)."""
        endpoint = PipelineEndpoint(workspace, name)
        endpoint._add(pipeline, description)
        return endpoint

    @staticmethod
    def get(
        workspace: Workspace,
        id: str | None = None,
        name: str | None = None,
        _workflow_provider: Any = None,
        _service_endpoint: Any = None,
    ) -> PipelineEndpoint:
        wanted = name or id
        if not wanted:
            raise SdkError("PipelineEndpoint.get needs id= or name=")
        if not workspace._backend.list_published(wanted):
            raise NotFound(
                f"no pipeline endpoint {wanted!r} (nothing published under that name)",
                hint="publish one with pipeline.publish(name=...) or pipesched publish",
            )
        return PipelineEndpoint(workspace, wanted)

    @staticmethod
    def list(
        workspace: Workspace, active_only: bool = True, **kwargs: Any
    ) -> list[PipelineEndpoint]:
        names = dict.fromkeys(d["pipeline"] for d in workspace._backend.list_published())
        return [PipelineEndpoint(workspace, name) for name in names]

    # -- versions -----------------------------------------------------------------------------

    def _add(self, pipeline: Any, description: str | None = None) -> PublishedPipeline:
        if isinstance(pipeline, PublishedPipeline):
            if pipeline.name != self.name:
                raise SdkError(
                    f"published pipeline {pipeline.id} belongs to endpoint '{pipeline.name}', "
                    f"not '{self.name}': an endpoint here is a pipeline's name",
                    hint=f"publish the Pipeline object with name={self.name!r}, or use "
                    f"PipelineEndpoint.get(ws, name={pipeline.name!r})",
                )
            return pipeline
        if hasattr(pipeline, "publish"):
            return pipeline.publish(name=self.name, description=description)
        raise SdkError(f"cannot add a {type(pipeline).__name__} to a pipeline endpoint")

    def add(self, pipeline: Any) -> None:
        self._add(pipeline)

    def add_default(self, pipeline: Any) -> None:
        self.set_default(self._add(pipeline))

    def set_default(self, pipeline: PublishedPipeline) -> None:
        self.set_default_version(self._add(pipeline).version)

    def set_default_version(self, version: str) -> None:
        self._workspace._backend.set_default_version(self.name, str(version))

    def get_pipeline(self, version: str | None = None) -> PublishedPipeline:
        wanted = str(version) if version is not None else self.default_version
        for data in self._versions():
            if data["version"] == wanted:
                return PublishedPipeline(self._workspace, data)
        raise NotFound(f"endpoint '{self.name}' has no version {wanted!r}")

    def list_pipelines(self, active_only: bool = True) -> builtins.list[PublishedPipeline]:
        return [PublishedPipeline(self._workspace, d) for d in self._versions()]

    def list_versions(self) -> builtins.list[PipelineIdVersion]:
        return [PipelineIdVersion(d["id"], d["version"]) for d in self._versions()]

    def submit(
        self,
        experiment_name: str,
        pipeline_parameters: dict[str, Any] | None = None,
        parent_run_id: str | None = None,
        pipeline_version: str | None = None,
        *,
        regenerate_outputs: bool = False,
    ) -> PipelineRun:
        """Run the default version (or ``pipeline_version``) under ``experiment_name``;
        ``regenerate_outputs`` (pipesched's) runs every step, reusing nothing."""
        ignore_given(
            "PipelineEndpoint.submit",
            {"parent_run_id": parent_run_id},
            {"parent_run_id": "runs have no parent runs here"},
        )
        run_id = submit_published(
            self._workspace,
            self.name,
            str(pipeline_version) if pipeline_version is not None else None,
            experiment=experiment_name,
            parameters=dict(pipeline_parameters or {}),
            regenerate_outputs=regenerate_outputs,
        )
        return self._workspace._pipeline_run(experiment_name, run_id)

    def enable(self) -> None:
        ignored("PipelineEndpoint", "enable", "endpoints are always active")

    def disable(self) -> None:
        ignored("PipelineEndpoint", "disable", "endpoints are always active")

    def __repr__(self) -> str:
        return f"PipelineEndpoint(Name: {self.name}, Endpoint: {self.endpoint})"
