"""Azure ML's ``Pipeline``: steps in, the validated pipeline definition out.

``validate()`` returns the errors as ``file:line:col: error: ...`` lines at the user's own lines;
``save(folder)`` writes a pipeline.yaml plus the steps' source directories that ``pipesched
validate`` accepts and that runs identically; ``submit`` and ``publish`` save to a temporary
folder and hand it to the workspace's backend (embedded or a daemon's REST API).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from scheduler.core.errors import DefinitionErrors
from scheduler.definitions import Pipeline as Definition
from scheduler.definitions import load_pipeline
from scheduler.definitions.fingerprint import IGNORE_FILES, source_files
from scheduler.sdk._warn import SdkError, ignore_given, ignored
from scheduler.sdk.build import Built, build_data, validate_built
from scheduler.sdk.datapath import caller_position, datastore_name, path_default, resolve_path
from scheduler.sdk.published import PublishedPipeline
from scheduler.sdk.sequence import flatten_steps
from scheduler.sdk.steps import PipelineStep
from scheduler.services.snapshots import leave_out

if TYPE_CHECKING:
    from scheduler.definitions.config import Config
    from scheduler.sdk.runs import PipelineRun

_HEADER = "# Saved by scheduler.sdk Pipeline.save()"
_UNSET: Any = object()
_EXTRAS = ("name", "experiment", "continue_on_step_failure")


def pipeline_name(text: str) -> str:
    """A valid pipeline name made from an experiment name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-._") or "pipeline"


class Pipeline:
    """A collection of steps, built into the same validated definition a pipeline.yaml gives.
    pipesched extras through ``**kwargs``: ``name=``, ``experiment=``,
    ``continue_on_step_failure=``."""

    def __init__(
        self,
        workspace: Any,
        steps: Any,
        description: str | None = None,
        default_datastore: Any = None,
        default_source_directory: Any = None,
        resolve_closure: bool = True,
        _workflow_provider: Any = None,
        _service_endpoint: Any = None,
        **kwargs: Any,
    ) -> None:
        ignore_given(
            "Pipeline",
            {"_workflow_provider": _workflow_provider, "_service_endpoint": _service_endpoint},
            dict.fromkeys(("_workflow_provider", "_service_endpoint"), "the workspace decides"),
        )
        for key in kwargs:
            if key not in _EXTRAS:
                ignored("Pipeline", key, f"known extras: {', '.join(_EXTRAS)}")
        self._workspace = workspace
        self._steps: list[PipelineStep] = flatten_steps(steps)
        self.description = description
        self._default_datastore = datastore_name(default_datastore, "Pipeline", "default_datastore")
        self._default_source = (
            resolve_path(default_source_directory) if default_source_directory else None
        )
        self._resolve_closure = resolve_closure
        self._name: str | None = kwargs.get("name")
        self._experiment: str | None = kwargs.get("experiment")
        self._continue_on_step_failure = bool(kwargs.get("continue_on_step_failure", False))
        self._where = caller_position()

    # -- the definition ---------------------------------------------------------------------------

    def _datastore(self) -> str:
        if self._default_datastore:
            return self._default_datastore
        get = getattr(self._workspace, "get_default_datastore", None)
        store = get() if get is not None else None
        return datastore_name(store) or "default"

    def _built(self, name: str | None) -> Built:
        header = {
            "description": self.description,
            "experiment": self._experiment,
            "continue_on_step_failure": self._continue_on_step_failure,
        }
        return build_data(
            self._steps,
            name=name or self._name,
            header=header,
            where=self._where,
            resolve_closure=self._resolve_closure,
            default_datastore=self._datastore(),
            default_source=self._default_source,
        )

    def _config(self) -> Config | None:
        return getattr(self._workspace, "_config", None)

    def definition(self, name: str | None = None, config: Config | None = _UNSET) -> Definition:
        """The validated ``scheduler.definitions.Pipeline`` (raises DefinitionErrors). Without a
        config (a remote workspace) datastore and compute names are left to the daemon."""
        config = self._config() if config is _UNSET else config
        return validate_built(self._built(name or self._name or "pipeline"), config)

    def validate(self) -> list[str]:
        """Every mistake, as ``file:line:col: error: ...`` at the line that made it; [] when
        the pipeline is valid (Azure returns the list too)."""
        try:
            self.definition()
        except DefinitionErrors as exc:
            return [str(error) for error in exc.errors]
        return []

    @property
    def graph(self) -> dict[str, Any]:
        """The pipeline.yaml data (Azure's graph, as pipesched sees it)."""
        return self._built(self._name).data

    # -- save ---------------------------------------------------------------------------------------

    def save(self, folder: str | os.PathLike[str], name: str | None = None) -> Path:
        """Write ``folder/pipeline.yaml`` and the steps' source directories beside it; a folder
        that is not empty must be an earlier save, which is replaced."""
        folder = Path(os.path.abspath(folder))
        pipeline = name or self._name or folder.name
        built = self._built(pipeline)
        validate_built(built, self._config())  # never write what does not validate
        _check_target(folder)
        if pipeline == folder.name:
            built.data.pop("name", None)
        folder.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.saving-", dir=folder.parent))
        try:
            for place, source in built.sources.items():
                if place in (".", "") or place.startswith(".."):
                    raise SdkError(f"cannot save source directory {source} beside pipeline.yaml")
                _copy_sources(source, work / place, self._config())
            origin = f"{built.doc.file}:{self._where[1]}"
            text = f"{_HEADER} from {origin}.\n# A later save() into this folder replaces it.\n"
            text += yaml.safe_dump(
                built.data, sort_keys=False, default_flow_style=None, width=100, allow_unicode=True
            )
            (work / "pipeline.yaml").write_text(text, encoding="utf-8")
            _swap(work, folder)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return folder

    # -- submit and publish ---------------------------------------------------------------------

    def _backend(self) -> Any:
        backend = getattr(self._workspace, "_backend", None)
        if backend is None:
            raise SdkError("this pipeline's workspace cannot run pipelines")
        return backend

    def _submit_to(
        self,
        experiment_name: str,
        parameters: dict[str, Any] | None,
        regenerate_outputs: bool,
        continue_on_step_failure: bool | None,
    ) -> str:
        """Save to a temporary folder and submit it; the run id (Experiment.submit calls this)."""
        values = {k: _plain(v) for k, v in (parameters or {}).items()}
        name = self._name or pipeline_name(experiment_name)
        with tempfile.TemporaryDirectory(prefix="pipesched-sdk-") as tmp:
            folder = self.save(Path(tmp) / name, name=name)
            return self._backend().submit(
                folder,
                experiment=experiment_name,
                parameters=values,
                regenerate_outputs=regenerate_outputs,
                continue_on_step_failure=continue_on_step_failure,
            )

    def submit(
        self,
        experiment_name: str,
        pipeline_parameters: dict[str, Any] | None = None,
        continue_on_step_failure: bool | None = None,
        regenerate_outputs: bool = False,
        parent_run_id: str | None = None,
        credential_passthrough: Any = None,
        **kwargs: Any,
    ) -> PipelineRun:
        """Run the pipeline in experiment ``experiment_name``; the PipelineRun."""
        ignore_given(
            "Pipeline.submit",
            {"parent_run_id": parent_run_id, "credential_passthrough": credential_passthrough},
            {
                "parent_run_id": "a pipeline run has no parent here",
                "credential_passthrough": "steps run as the daemon's user",
            },
        )
        for argument in kwargs:
            ignored("Pipeline.submit", argument, "pipesched's submit does not know it")
        run_id = self._submit_to(
            experiment_name, pipeline_parameters, regenerate_outputs, continue_on_step_failure
        )
        return self._workspace._pipeline_run(experiment_name, run_id)

    def publish(
        self,
        name: str | None = None,
        description: str | None = None,
        version: str | None = None,
        continue_on_step_failure: bool | None = None,
    ) -> PublishedPipeline:
        """Publish a snapshot of the pipeline as ``name`` (``published.id`` is NAME@VERSION)."""
        name = name or self._name
        if not name:
            raise SdkError("a published pipeline needs a name", hint="pipeline.publish(name=...)")
        keep = self._continue_on_step_failure
        if continue_on_step_failure is not None:  # this snapshot's setting only
            self._continue_on_step_failure = continue_on_step_failure
        try:
            with tempfile.TemporaryDirectory(prefix="pipesched-sdk-") as tmp:
                folder = self.save(Path(tmp) / pipeline_name(name), name=name)
                data = self._backend().publish(
                    folder,
                    name=name,
                    version=version,
                    description=description or self.description,
                )
        finally:
            self._continue_on_step_failure = keep
        return PublishedPipeline._from_json(self._workspace, data)

    @staticmethod
    def load_yaml(
        workspace: Any,
        filename: str | os.PathLike[str],
        _workflow_provider: Any = None,
        _service_endpoint: Any = None,
    ) -> Pipeline:
        """A pipesched pipeline.yaml (not Azure's YAML format) as a Pipeline to submit or
        publish."""
        return _YamlPipeline(workspace, Path(filename))

    def __repr__(self) -> str:
        return f"Pipeline(steps={[s.name for s in self._steps]!r})"


class _YamlPipeline(Pipeline):
    """A pipeline read from a pipeline.yaml: saving copies its folder."""

    def __init__(self, workspace: Any, file: Path) -> None:
        self._workspace = workspace
        self._file = Path(os.path.abspath(file))
        if self._file.is_dir():
            self._file = self._file / "pipeline.yaml"
        loaded = load_pipeline(self._file, self._config())
        self._name = loaded.name
        self.description = loaded.description
        self._steps = []
        self._experiment = None
        self._continue_on_step_failure = False
        self._where = (str(self._file), 1)

    def definition(self, name: str | None = None, config: Config | None = _UNSET) -> Definition:
        return load_pipeline(self._file, self._config() if config is _UNSET else config)

    @property
    def graph(self) -> dict[str, Any]:
        return yaml.safe_load(self._file.read_text(encoding="utf-8"))

    def save(self, folder: str | os.PathLike[str], name: str | None = None) -> Path:
        definition = self.definition()
        root = definition.directory
        outside = [
            s for s in definition.steps.values() if not s.source_directory.is_relative_to(root)
        ]
        if outside:
            raise SdkError(
                f"step '{outside[0].id}' reads files outside {root}; copy the folder by hand"
            )
        folder = Path(os.path.abspath(folder))
        _check_target(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.saving-", dir=folder.parent))
        try:
            _copy_sources(root, work, self._config())
            data = yaml.safe_load(self._file.read_text(encoding="utf-8"))
            data["name"] = name or definition.name
            text = f"{_HEADER} from {self._file}.\n"
            text += yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)
            (work / "pipeline.yaml").write_text(text, encoding="utf-8")
            _swap(work, folder)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return folder


def _plain(value: Any) -> Any:
    """A parameter value as the backend takes it: DataPath and datasets as datastore:// URIs."""
    path = path_default(value)
    return path if path is not None else value


def _check_target(folder: Path) -> None:
    if not folder.exists():
        return
    if not folder.is_dir():
        raise SdkError(f"cannot save into {folder}: it is a file")
    if not any(folder.iterdir()):
        return
    try:
        first = (folder / "pipeline.yaml").read_text(encoding="utf-8").split("\n", 1)[0]
    except OSError:
        first = ""
    if not first.startswith(_HEADER):
        raise SdkError(
            f"cannot save into {folder}: it holds files that an earlier save() did not write",
            hint="choose an empty or new folder",
        )


def _copy_sources(source: Path, target: Path, config: Config | None) -> None:
    """The files reuse hashes (``source_files``) plus the ignore files that select them; never
    a pipesched state directory or a datastore (``scheduler.services.snapshots.leave_out``)."""
    target.mkdir(parents=True, exist_ok=True)
    files = list(source_files(source, leave_out(config)))
    files += [(n, str(source / n)) for n in IGNORE_FILES if (source / n).is_file()]
    for rel, full in files:
        destination = target / rel
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(full, destination)


def _swap(work: Path, folder: Path) -> None:
    """Replace ``folder`` by ``work`` with two renames, so a daemon reloading never reads a
    half-written pipeline."""
    if folder.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
        os.rename(folder, old / "previous")
        os.rename(work, folder)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(work, folder)
