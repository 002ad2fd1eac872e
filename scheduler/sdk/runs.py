"""Azure ML's ``PipelineRun`` and ``StepRun``: a recorded run read back through the workspace's
backend (the store, or the daemon's API), in Azure's words (``Finished``, ``runId``...).

Every read asks the backend afresh: a run object is a handle, not a snapshot, so ``status``
after ``wait_for_completion`` is the final one.
"""

from __future__ import annotations

import shutil
import sys
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scheduler.core.errors import NotFound
from scheduler.sdk._warn import SdkError, ignore_given, ignored
from scheduler.sdk.datapath import DataReference
from scheduler.sdk.datastore import Datastore
from scheduler.sdk.models import Model, register_run_model
from scheduler.sdk.published import PublishedPipeline
from scheduler.sdk.watch import FINAL, STATUS_CODES, STEP_STATUS_CODES, Watcher, poll, show_step

if TYPE_CHECKING:
    from scheduler.sdk.workspace import Experiment, Workspace


# The run statuses after which nothing more is logged.
FINISHED = frozenset({"completed", "failed", "canceled"})


class ActivityFailedException(SdkError):
    """The run failed (Azure ML raises an exception of this name from wait_for_completion)."""


class _RunBase:
    experiment: Experiment

    @property
    def _backend(self) -> Any:
        return self.experiment.workspace._backend

    @property
    def id(self) -> str:
        raise NotImplementedError

    def get_tags(self) -> dict[str, str]:
        return {}

    def tag(self, key: str, value: str | None = None) -> None:
        ignored(type(self).__name__, "tag", "runs carry no tags on pipesched")

    def set_tags(self, tags: dict[str, str]) -> None:
        ignored(type(self).__name__, "set_tags", "runs carry no tags on pipesched")

    def get_properties(self) -> dict[str, str]:
        return {}

    def register_model(
        self,
        model_name: str,
        model_path: str | None = None,
        tags: dict[str, Any] | None = None,
        properties: dict[str, Any] | None = None,
        model_framework: str | None = None,
        model_framework_version: str | None = None,
        description: str | None = None,
        datasets: Any = None,
        sample_input_dataset: Any = None,
        sample_output_dataset: Any = None,
        resource_configuration: Any = None,
        **kwargs: Any,
    ) -> Model:
        """Register a file or folder the run made as the next version of ``model_name``,
        recorded with this run and its step. ``model_path`` (default: ``model_name``) is
        relative to the step's working folder, e.g. ``outputs/model.pkl``; on a pipeline run,
        the one step that has it."""
        unused = "pipesched keeps a model's files, tags, properties and description"
        given = {
            "model_framework": model_framework,
            "model_framework_version": model_framework_version,
            "datasets": datasets,
            "sample_input_dataset": sample_input_dataset,
            "sample_output_dataset": sample_output_dataset,
            "resource_configuration": resource_configuration,
        }
        ignore_given("register_model", given, dict.fromkeys(given, unused))
        run_id, _, step = self.id.partition("/")
        return register_run_model(
            self.experiment.workspace,
            run_id,
            step or None,
            model_name,
            model_path,
            tags,
            properties,
            description,
        )


class PipelineRun(_RunBase):
    """One run of a pipeline. ``PipelineRun(experiment, run_id)`` finds an existing run (any
    unique prefix of its id, as ``pipesched show`` takes)."""

    def __init__(
        self,
        experiment: Experiment,
        run_id: str,
        _service_endpoint: str | None = None,
        _data: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.experiment = experiment
        self._id = run_id
        self._data = _data

    @property
    def id(self) -> str:
        return self._id

    @property
    def workspace(self) -> Workspace:
        return self.experiment.workspace

    def _detail(self) -> dict[str, Any]:
        data = self._backend.get_run(self._id)
        self._id = data["id"]  # a prefix becomes the full id
        return data

    @property
    def status(self) -> str:
        return self.get_status()

    def get_status(self) -> str:
        """NotStarted, Running, Finished, Failed or Canceled."""
        return STATUS_CODES[self._detail()["status"]]

    def get_details(self) -> dict[str, Any]:
        """Azure's keys (``runId``, ``status``, ``startTimeUtc``, ``endTimeUtc``,
        ``properties``, ``inputDatasets``, ``outputDatasets``) over the ``show --json`` object
        (``steps``, ``parameters``...); that object's own status word is ``pipeschedStatus``."""
        return _azure_details(self._detail())

    def get_metrics(
        self, name: str | None = None, recursive: bool = False, run_type: Any = None, **_: Any
    ) -> dict[str, Any]:
        """Metrics of the run. A pipeline run logs none itself, so without ``recursive`` this
        merges every step's metrics (a later step's value wins on a name clash); with it,
        ``{step_run_id: {name: value}}`` as Azure returns. A run listed by
        ``Experiment.get_runs`` that had finished then answers from that listing, which carried
        its metrics (a finished run logs no more), without asking again."""
        listed = self._data or {}
        if not recursive and listed.get("status") in FINISHED and "metrics" in listed:
            by_step = listed["metrics"].values()
            merged_listed = {k: v for values in by_step for k, v in values.items()}
            if len(merged_listed) == sum(len(values) for values in by_step):
                return _only(merged_listed, name)  # no name in two steps: no order to keep
        detail = self._detail()
        if recursive:
            return {f"{self._id}/{s['name']}": _only(s["metrics"], name) for s in detail["steps"]}
        merged: dict[str, Any] = {}
        for step in detail["steps"]:
            merged.update(step["metrics"])
        return _only(merged, name)

    def get_steps(self) -> list[StepRun]:
        """The step runs, in the pipeline's step order."""
        return [self._step_run(s) for s in self._detail()["steps"]]

    def get_children(self, recursive: bool = False, **kwargs: Any) -> list[StepRun]:
        return self.get_steps()

    def find_step_run(self, name: str) -> list[StepRun]:
        """Step runs whose display name (the step's ``name=``) or step id is ``name``."""
        return [
            self._step_run(s)
            for s in self._detail()["steps"]
            if name in (s["display_name"], s["name"])
        ]

    def _step_run(self, step: dict[str, Any]) -> StepRun:
        return StepRun(self.experiment, f"{self._id}/{step['name']}", self._id, step["name"])

    def cancel(self) -> None:
        self._backend.cancel_run(self._id)

    def wait_for_completion(
        self,
        show_output: bool = True,
        timeout_seconds: float = sys.maxsize,
        raise_on_error: bool = True,
    ) -> str:
        """Wait for the run to end and return its final status. ``show_output`` prints each
        step's log as it runs (steps one after another, in start order), as Azure streams them.
        Raises ActivityFailedException when the run failed and ``raise_on_error``."""
        deadline = time.monotonic() + min(timeout_seconds, 10**9)
        if show_output:
            print(f"PipelineRunId: {self.id}")
            status = Watcher(self, deadline).watch()
        else:
            wait = partial(self._backend.wait_for_change, self._id)
            status = poll(lambda: self.get_status(), deadline, wait)
        if status not in FINAL:
            if show_output:
                print(f"Timed out of waiting. Status: {status}")
            return status
        if show_output:
            print("\nPipelineRun Execution Summary\n==============================")
            print(f"PipelineRun Status: {status}")
        if status == "Failed" and raise_on_error:
            detail = self._detail()
            reason = f": {detail['status_reason']}" if detail.get("status_reason") else ""
            raise ActivityFailedException(f"run {self.id} failed{reason}")
        return status

    def publish_pipeline(
        self,
        name: str,
        description: str,
        version: str,
        continue_on_step_failure: bool | None = None,
    ) -> PublishedPipeline:
        """Publish what this run ran as ``name`` at ``version``. The run need not have
        finished (as on Azure): its definition was fixed when it was submitted."""
        if continue_on_step_failure is not None:
            ignored(
                "PipelineRun.publish_pipeline",
                "continue_on_step_failure",
                "a published pipeline keeps its definition's setting; pass it when submitting",
            )
        data = self._backend.publish_run(
            self._id, name=name, version=version, description=description
        )
        return PublishedPipeline._from_json(self.workspace, data)

    @staticmethod
    def get_pipeline_runs(workspace: Workspace, pipeline_id: str) -> list[PipelineRun]:
        """Runs of a published pipeline (``NAME@VERSION``, or NAME for every version)."""
        name, _, version = pipeline_id.partition("@")
        runs = workspace._backend.list_runs(pipeline=name, limit=0)
        return [
            workspace._pipeline_run(r["experiment"], r["id"], r)
            for r in runs
            if not version or r["version"] == version
        ]

    def __repr__(self) -> str:
        return f"PipelineRun(Experiment: {self.experiment.name}, Id: {self.id})"


# A reused step points at the run it reused, which may itself have reused an older one.
_MAX_REUSE_HOPS = 100


class StepRun(_RunBase):
    """One step of a pipeline run; its id is ``<run id>/<step id>``."""

    def __init__(
        self,
        experiment: Experiment,
        step_run_id: str,
        pipeline_run_id: str | None = None,
        node_id: str | None = None,
        _service_endpoint: str | None = None,
        **kwargs: Any,
    ) -> None:
        run_id, _, step = step_run_id.partition("/")
        self.experiment = experiment
        self._run_id = pipeline_run_id or run_id
        self._step = node_id or step
        if not self._step:
            raise SdkError(f"a step run id reads RUN/STEP (got {step_run_id!r})")

    @property
    def id(self) -> str:
        return f"{self._run_id}/{self._step}"

    @property
    def parent(self) -> PipelineRun:
        return PipelineRun(self.experiment, self._run_id)

    @property
    def parent_id(self) -> str:
        return self._run_id

    def _detail(self) -> dict[str, Any]:
        return self._detail_of(self._run_id)

    @property
    def name(self) -> str:
        return self._detail()["display_name"] or self._step

    @property
    def status(self) -> str:
        return self.get_status()

    def get_status(self) -> str:
        return STEP_STATUS_CODES[self._detail()["status"]]

    def get_details(self) -> dict[str, Any]:
        step = self._detail()
        return {
            **step,
            "runId": self.id,
            "status": STEP_STATUS_CODES[step["status"]],
            "pipeschedStatus": step["status"],
            "startTimeUtc": step["started_at"],
            "endTimeUtc": step["finished_at"],
            "properties": {"reused_from": step["reused_from"]} if step["reused_from"] else {},
            "outputDatasets": [{"name": k, "path": v} for k, v in step["outputs"].items()],
        }

    def get_metrics(self, name: str | None = None, **_: Any) -> dict[str, Any]:
        return _only(self._detail()["metrics"], name)

    def _outputs(self) -> dict[str, PortDataReference]:
        """Asked of the backend: only the machine that ran the step knows which datastore
        holds each output."""
        workspace = self.experiment.workspace
        return {
            o["name"]: PortDataReference(workspace, o, self)
            for o in self._backend.step_outputs(self._run_id, self._step)
        }

    def get_outputs(self) -> dict[str, StepRunOutput]:
        """Every output of the step, by name, as Azure's StepRunOutput."""
        return {name: StepRunOutput(self, port) for name, port in self._outputs().items()}

    def get_output(self, name: str) -> StepRunOutput:
        return StepRunOutput(self, self.get_output_data(name))

    def get_output_data(self, name: str) -> PortDataReference:
        """The output's data (Azure's PortDataReference): download it, or read it in a step
        of another pipeline."""
        outputs = self._outputs()
        if name not in outputs:
            known = ", ".join(outputs) or "none"
            raise NotFound(f"step {self._step!r} has no output {name!r}", hint=f"outputs: {known}")
        return outputs[name]

    def get_job_log(self) -> str:
        """The step's output (stdout and stderr together, as it ran), latest attempt. A reused
        step's is the output of the run it reused, as on Azure (where it is that step run)."""
        run_id = self._run_id
        for _ in range(_MAX_REUSE_HOPS):
            source = self._detail_of(run_id).get("reused_from")
            if not source:
                break
            run_id = str(source)
        return b"".join(self._backend.step_log(run_id, self._step)).decode(errors="replace")

    def _detail_of(self, run_id: str) -> dict[str, Any]:
        for step in self._backend.get_run(run_id)["steps"]:
            if step["name"] == self._step:
                return dict(step)
        raise NotFound(f"run {run_id} has no step {self._step!r}")

    get_stdout_log = get_job_log
    get_stderr_log = get_job_log

    def wait_for_completion(
        self,
        show_output: bool = True,
        timeout_seconds: float = sys.maxsize,
        raise_on_error: bool = True,
    ) -> str:
        deadline = time.monotonic() + min(timeout_seconds, 10**9)
        if show_output:
            show_step(self._backend, self._run_id, self._detail())
        wait = partial(self._backend.wait_for_change, self._run_id)
        status = poll(lambda: self.get_status(), deadline, wait)
        if status == "Failed" and raise_on_error:
            raise ActivityFailedException(f"step run {self.id} failed")
        return status

    def __repr__(self) -> str:
        return f"StepRun(Experiment: {self.experiment.name}, Id: {self.id})"


class PortDataReference(DataReference):
    """A step's output folder (Azure's PortDataReference): ``datastore_name``,
    ``path_on_datastore``, a copy with ``download``; and, as the DataReference it is, an input
    of a step in another pipeline (a ``path`` parameter of that folder)."""

    def __init__(
        self, workspace: Workspace, output: dict[str, Any], step_run: StepRun | None = None
    ) -> None:
        super().__init__(
            Datastore(workspace, output["datastore_name"] or "default"),
            data_reference_name=output["name"],
            path_on_datastore=output["path_on_datastore"],
        )
        self.datastore_name: str | None = output["datastore_name"]
        # Where the folder is on the machine that ran the step (``path()`` is DataReference's).
        self.folder = Path(output["path"])
        self.step_run = step_run
        self._workspace = workspace

    @property
    def data_reference(self) -> DataReference:
        return self

    def as_input(self, input_name: str | None = None) -> DataReference:
        return self if input_name in (None, self.name) else self.path(None, input_name)

    def create_input_binding(self, input_name: str | None = None, **kwargs: Any) -> DataReference:
        return self.as_input(input_name)

    def download(self, local_path: str, overwrite: bool = False, show_progress: bool = True) -> str:
        """Copy the output to ``local_path/<path_on_datastore>``; return that path. Through a
        daemon the files come over its datastore API (``Datastore.download``)."""
        target = Path(local_path) / (self.path_on_datastore or "")
        if target.exists() and not overwrite:
            raise SdkError(f"{target} exists", hint="pass overwrite=True")
        if self._workspace._config is None:
            prefix = (self.path_on_datastore or "").rstrip("/") + "/"
            self.datastore.download(
                local_path, prefix=prefix, overwrite=overwrite, show_progress=show_progress
            )
            return str(target)
        if self.folder.is_dir():
            shutil.copytree(self.folder, target, dirs_exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self.folder, target)
        return str(target)

    def __repr__(self) -> str:
        return (
            f"PortDataReference(name={self.name!r}, datastore_name={self.datastore_name!r}, "
            f"path_on_datastore={self.path_on_datastore!r})"
        )


OutputData = PortDataReference  # the name pipesched used first


class StepRunOutput:
    """One output of a step run (Azure's StepRunOutput); ``get_port_data_reference()`` gives
    its data. The data's attributes are here too, for code that reads them directly."""

    def __init__(self, step_run: StepRun, port: PortDataReference) -> None:
        self.step_run = step_run
        self.pipeline_run_id = step_run.parent_id
        self.name = port.name
        self._port = port

    def get_port_data_reference(self) -> PortDataReference:
        return self._port

    @property
    def datastore_name(self) -> str | None:
        return self._port.datastore_name

    @property
    def path_on_datastore(self) -> str | None:
        return self._port.path_on_datastore

    @property
    def folder(self) -> Path:
        return self._port.folder

    def download(self, local_path: str, overwrite: bool = False, show_progress: bool = True) -> str:
        return self._port.download(local_path, overwrite, show_progress)

    def __repr__(self) -> str:
        return f"StepRunOutput(name={self.name!r}, step_run={self.step_run.id!r})"


def _only(metrics: dict[str, Any], name: str | None) -> dict[str, Any]:
    if name is None:
        return dict(metrics)
    return {name: metrics[name]} if name in metrics else {}


def _azure_details(detail: dict[str, Any]) -> dict[str, Any]:
    outputs = [
        {"step": s["name"], "name": k, "path": v}
        for s in detail["steps"]
        for k, v in s["outputs"].items()
    ]
    inputs = [
        {"name": k, "path": v}
        for k, v in detail.get("parameters", {}).items()
        if isinstance(v, str) and v.startswith("datastore://")
    ]
    return {
        **detail,
        "runId": detail["id"],
        "status": STATUS_CODES[detail["status"]],
        "pipeschedStatus": detail["status"],
        "startTimeUtc": detail["started_at"],
        "endTimeUtc": detail["finished_at"],
        "properties": {
            "pipeline": detail["pipeline"],
            "version": detail["version"],
            "trigger": detail["trigger"],
        },
        "inputDatasets": inputs,
        "outputDatasets": outputs,
    }
