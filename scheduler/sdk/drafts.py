"""Azure ML's ``PipelineDraft``: a mutable pipeline to run and publish again and again.

A draft is kept by the workspace (``<state_dir>/drafts/`` on the machine that runs the
pipelines: embedded directly, through a daemon over ``/api/v1/drafts``). It holds a snapshot
of its pipeline, so editing the notebook's steps afterwards changes nothing until
``update(pipeline=...)``; and the experiment, parameter values and ``continue_on_step_failure``
its runs are submitted with. ``publish()`` publishes the next version of the pipeline named after
the draft.
"""

from __future__ import annotations

import builtins
import html
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scheduler.sdk._warn import SdkError, ignore_given, ignored
from scheduler.sdk.pipeline import Pipeline, _plain, pipeline_name
from scheduler.sdk.published import PublishedPipeline

if TYPE_CHECKING:
    from scheduler.sdk.runs import PipelineRun
    from scheduler.sdk.workspace import Workspace

_PROVIDER = "the workspace decides"


class PipelineDraft:
    """One draft, read from the workspace. Made with ``PipelineDraft.create``; found with
    ``get`` and ``list``."""

    def __init__(
        self,
        workspace: Workspace,
        id: str,
        name: str | None = None,
        description: str | None = None,
        experiment_name: str | None = None,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        graph_draft_id: str | None = None,
        parent_pipeline_id: str | None = None,
        parent_pipeline_run_id: str | None = None,
        parent_step_run_ids: list[str] | None = None,
        parent_pipeline_draft_id: str | None = None,
        last_submitted_pipeline_run_id: str | None = None,
        _pipeline_draft_provider: Any = None,
    ) -> None:
        self._workspace = workspace
        self._data: dict[str, Any] = {
            "id": id,
            "name": name,
            "description": description,
            "experiment_name": experiment_name,
            "tags": tags or {},
            "properties": properties or {},
            "parent_pipeline_id": parent_pipeline_id,
            "parent_pipeline_run_id": parent_pipeline_run_id,
            "parent_step_run_ids": parent_step_run_ids or [],
            "parent_pipeline_draft_id": parent_pipeline_draft_id,
            "last_submitted_pipeline_run_id": last_submitted_pipeline_run_id,
        }

    @classmethod
    def _from_json(cls, workspace: Workspace, data: dict[str, Any]) -> PipelineDraft:
        draft = cls(workspace, data["id"])
        draft._data = dict(data)
        return draft

    def _refresh(self, data: dict[str, Any]) -> None:
        self._data = dict(data)

    # -- what it holds ----------------------------------------------------------------------------

    @property
    def id(self) -> str:
        return str(self._data["id"])

    @property
    def name(self) -> str | None:
        return self._data.get("name")

    @property
    def description(self) -> str | None:
        return self._data.get("description")

    @property
    def experiment_name(self) -> str | None:
        return self._data.get("experiment_name")

    @property
    def tags(self) -> dict[str, str]:
        return dict(self._data.get("tags") or {})

    @property
    def properties(self) -> dict[str, str]:
        return dict(self._data.get("properties") or {})

    @property
    def pipeline_parameters(self) -> dict[str, Any]:
        """pipesched's: the parameter values the draft's runs are submitted with."""
        return dict(self._data.get("pipeline_parameters") or {})

    @property
    def continue_on_step_failure(self) -> bool | None:
        return self._data.get("continue_on_step_failure")

    @property
    def parent_pipeline_id(self) -> str | None:
        return self._data.get("parent_pipeline_id")

    @property
    def parent_pipeline_run_id(self) -> str | None:
        return self._data.get("parent_pipeline_run_id")

    @property
    def parent_step_run_ids(self) -> list[str]:
        return list(self._data.get("parent_step_run_ids") or [])

    @property
    def parent_pipeline_draft_id(self) -> str | None:
        return self._data.get("parent_pipeline_draft_id")

    @property
    def last_submitted_pipeline_run_id(self) -> str | None:
        return self._data.get("last_submitted_pipeline_run_id")

    # -- making and finding -----------------------------------------------------------------------

    @staticmethod
    def create(
        workspace: Workspace,
        pipeline: Any,
        name: str | None = None,
        description: str | None = None,
        experiment_name: str | None = None,
        pipeline_parameters: dict[str, Any] | None = None,
        continue_on_step_failure: bool | None = None,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        _workflow_provider: Any = None,
        _service_endpoint: Any = None,
    ) -> PipelineDraft:
        """A draft of ``pipeline``: a Pipeline (then ``name`` and ``experiment_name`` are
        required, as on Azure), a PipelineRun, a PublishedPipeline or another PipelineDraft
        (then the other arguments are not used, as on Azure)."""
        _ignore_provider("PipelineDraft.create", _workflow_provider, _service_endpoint)
        backend = workspace._backend
        if isinstance(pipeline, Pipeline):
            if name is None:
                raise SdkError("PipelineDraft.create: name can not be None")
            if experiment_name is None:
                raise SdkError("PipelineDraft.create: experiment_name can not be None")
            fields = _fields(
                name=name,
                description=description,
                experiment_name=experiment_name,
                pipeline_parameters=_plain_parameters(pipeline_parameters),
                continue_on_step_failure=continue_on_step_failure,
                tags=tags,
            )
            with _saved(pipeline, name, continue_on_step_failure) as folder:
                data = backend.create_draft({"folder": folder}, fields, properties)
            return PipelineDraft._from_json(workspace, data)
        _ignore_clone_arguments(
            name, description, experiment_name, pipeline_parameters, tags, properties
        )
        if isinstance(pipeline, PipelineDraft):
            source: dict[str, Any] = {"draft": pipeline.id}
        elif isinstance(pipeline, PublishedPipeline):
            source = {"pipeline": pipeline.name, "version": pipeline.version}
        elif _is_pipeline_run(pipeline):
            source = {"run": pipeline.id}
        else:
            raise SdkError(
                "pipeline should be of type Pipeline, PublishedPipeline, PipelineDraft, or "
                f"PipelineRun (got {type(pipeline).__name__})"
            )
        return PipelineDraft._from_json(workspace, backend.create_draft(source, {}))

    @staticmethod
    def get(
        workspace: Workspace, id: str, _workflow_provider: Any = None, _service_endpoint: Any = None
    ) -> PipelineDraft:
        _ignore_provider("PipelineDraft.get", _workflow_provider, _service_endpoint)
        return PipelineDraft._from_json(workspace, workspace._backend.get_draft(id))

    @staticmethod
    def list(
        workspace: Workspace, tags: dict[str, str] | None = None, _workflow_provider: Any = None
    ) -> builtins.list[PipelineDraft]:
        """Every draft of the workspace, oldest first; with ``tags``, those that carry every
        tag given (with its value)."""
        _ignore_provider("PipelineDraft.list", _workflow_provider, None)
        wanted = dict(tags or {})
        return [
            PipelineDraft._from_json(workspace, data)
            for data in workspace._backend.list_drafts()
            if all(data.get("tags", {}).get(k) == v for k, v in wanted.items())
        ]

    # -- changing, running, publishing ------------------------------------------------------------

    def update(
        self,
        pipeline: Pipeline | None = None,
        name: str | None = None,
        description: str | None = None,
        experiment_name: str | None = None,
        tags: dict[str, str] | None = None,
        pipeline_parameters: dict[str, Any] | None = None,
        continue_on_step_failure: bool | None = None,
        _workflow_provider: Any = None,
    ) -> None:
        """Change what is given; ``pipeline`` (a Pipeline) replaces the draft's pipeline."""
        _ignore_provider("PipelineDraft.update", _workflow_provider, None)
        if pipeline is not None and not isinstance(pipeline, Pipeline):
            raise SdkError("pipeline should be of type Pipeline")
        fields = _fields(
            name=name,
            description=description,
            experiment_name=experiment_name,
            pipeline_parameters=_plain_parameters(pipeline_parameters),
            continue_on_step_failure=continue_on_step_failure,
            tags=tags,
        )
        backend = self._workspace._backend
        if pipeline is None:
            self._refresh(backend.update_draft(self.id, fields))
            return
        flag = continue_on_step_failure
        if flag is None:
            flag = self.continue_on_step_failure
        with _saved(pipeline, name or self.name, flag) as folder:
            self._refresh(backend.update_draft(self.id, fields, folder))

    def submit_run(self, _workflow_provider: Any = None) -> PipelineRun:
        """Run the draft's pipeline in its experiment with its parameter values; the draft
        can still be changed and run again."""
        _ignore_provider("PipelineDraft.submit_run", _workflow_provider, None)
        run_id = self._workspace._backend.submit_draft(self.id)
        self._data["last_submitted_pipeline_run_id"] = run_id
        return self._workspace._pipeline_run(self.experiment_name or "", run_id)

    def _submit_to(
        self,
        experiment_name: str,
        parameters: dict[str, Any] | None,
        regenerate_outputs: bool,
        continue_on_step_failure: bool | None,
    ) -> str:
        """``Experiment(ws, name).submit(draft)``: runs the draft in that experiment (which
        the draft keeps, as on Azure); the run id."""
        changes: dict[str, Any] = {"experiment_name": experiment_name}
        if parameters:
            changes["pipeline_parameters"] = _plain_parameters(parameters)
        if continue_on_step_failure is not None:
            changes["continue_on_step_failure"] = continue_on_step_failure
        if regenerate_outputs:
            ignored("Experiment.submit", "regenerate_outputs", "a draft's runs reuse as usual")
        self._refresh(self._workspace._backend.update_draft(self.id, changes))
        return self.submit_run().id

    def publish(self, _workflow_provider: Any = None) -> PublishedPipeline:
        """Publish the draft's pipeline as the next version of the pipeline named after the
        draft; the draft stays, to be changed and published again."""
        _ignore_provider("PipelineDraft.publish", _workflow_provider, None)
        data = self._workspace._backend.publish_draft(self.id)
        return PublishedPipeline._from_json(self._workspace, data)

    def delete(self, _workflow_provider: Any = None) -> None:
        """Forget the draft (runs and published versions made from it stay)."""
        _ignore_provider("PipelineDraft.delete", _workflow_provider, None)
        self._workspace._backend.delete_draft(self.id)

    # -- showing -------------------------------------------------------------------------------------

    def _info(self) -> dict[str, Any]:
        return {
            "Name": self.name,
            "Id": self.id,
            "Tags": self.tags,
            "Properties": self.properties,
            "Last Submitted Pipeline Run Id": self.last_submitted_pipeline_run_id,
        }

    def __str__(self) -> str:
        shown = ",\n".join(f"{k}: {v}" for k, v in self._info().items())
        return f"Pipeline({shown})"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in self._info().items()
        )
        return f"<table>{rows}</table>"


# -- helpers ------------------------------------------------------------------------------------


def _fields(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _plain_parameters(parameters: dict[str, Any] | None) -> dict[str, Any] | None:
    """Parameter values as a run takes them (a DataPath as its ``datastore://`` URI)."""
    if parameters is None:
        return None
    return {k: _plain(v) for k, v in parameters.items()}


def _is_pipeline_run(value: Any) -> bool:
    # lazy: runs loads the store's records; a draft of a Pipeline must not need them
    from scheduler.sdk.runs import PipelineRun

    return isinstance(value, PipelineRun)


@contextmanager
def _saved(pipeline: Pipeline, name: str | None, flag: bool | None) -> Iterator[Path]:
    """The pipeline saved to a temporary folder, with the draft's ``continue_on_step_failure``
    when given (so a version published from the draft keeps it)."""
    keep = pipeline._continue_on_step_failure
    if flag is not None:
        pipeline._continue_on_step_failure = flag
    try:
        with tempfile.TemporaryDirectory(prefix="pipesched-draft-") as tmp:
            label = pipeline._name or pipeline_name(name or "draft")
            yield pipeline.save(Path(tmp) / label, name=label)
    finally:
        pipeline._continue_on_step_failure = keep


def _ignore_provider(owner: str, workflow_provider: Any, service_endpoint: Any) -> None:
    ignore_given(
        owner,
        {"_workflow_provider": workflow_provider, "_service_endpoint": service_endpoint},
        dict.fromkeys(("_workflow_provider", "_service_endpoint"), _PROVIDER),
    )


def _ignore_clone_arguments(*values: Any) -> None:
    if any(v is not None for v in values):
        ignored(
            "PipelineDraft.create",
            "name, description, experiment_name, pipeline_parameters, tags, properties",
            "a draft of a run, a published pipeline or a draft takes them from it, as on "
            "Azure; change them with draft.update(...)",
        )
