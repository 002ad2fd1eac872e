"""``Run`` in a step: ``scheduler.runtime``'s Run (``get_context``, ``log``, ``log_list``,
``log_row``, ``log_image``, ``complete``), plus what else Azure ML's Run gives a step script:
``parent``, ``experiment.workspace``, ``input_datasets`` that read as datasets, ``log_table``,
``get_metrics``, tags and properties, and ``upload_file``/``upload_folder`` into the step's
working directory (whose ``outputs/`` pipesched keeps, as Azure ML keeps a run's)."""

from __future__ import annotations

import os
import sys
import uuid
from typing import IO, Any, NoReturn

from scheduler.runtime import Run as _RuntimeRun
from scheduler.runtime import read_metrics_file

from .. import _pipesched
from .dataset import DatasetInput
from .experiment import Experiment


class Run(_RuntimeRun, metaclass=_pipesched.Explaining):
    """This step's run inside a pipeline step (``Run.get_context()``); an offline run elsewhere."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.experiment = Experiment(str(self.experiment))
        self.input_datasets = {
            name: DatasetInput(path) for name, path in self.input_datasets.items()
        }
        self._workdir = os.getcwd()
        self._tags: dict[str, Any] = {}
        self._properties: dict[str, Any] = {}
        self._parent: Run | None = None

    @classmethod
    def _offline(cls) -> Run:
        return _OfflineRun(
            run_id=f"OfflineRun_{uuid.uuid4()}", experiment="offline", parent_id=None
        )

    @property
    def parent(self) -> Run | None:
        """The pipeline run. What a step logs to it is stored with the step's own metrics."""
        if self.parent_id is None:
            return None
        if self._parent is None:
            self._parent = _PipelineRun(
                run_id=self.parent_id,
                experiment=str(self.experiment),
                parent_id=None,
                metrics_file=self._metrics_file,
                images_dir=self._images_dir,
            )
        return self._parent

    # -- metrics ----------------------------------------------------------------------------------

    def log_table(self, name: str, value: dict[str, Any], description: str = "") -> None:
        """A table given as columns (``{"epoch": [1, 2], "loss": [0.5, 0.3]}``), stored as rows."""
        columns = {key: list(values) for key, values in value.items()}
        for index in range(max((len(v) for v in columns.values()), default=0)):
            self.log_row(name, **{k: v[index] for k, v in columns.items() if index < len(v)})

    def get_metrics(
        self,
        name: str | None = None,
        recursive: bool = False,
        run_type: str | None = None,
        populate: bool = False,
    ) -> dict[str, Any]:
        """What this step logged so far, as Azure ML shapes it: a name logged once gives its
        value, logged again a list; a table gives ``{column: [values]}``."""
        found: dict[str, Any] = {}
        seen: dict[str, int] = {}
        lines = read_metrics_file(self._metrics_file) if self._metrics_file else []
        for line in lines:
            key, kind, value = line["name"], line["kind"], line["value"]
            if name is not None and key != name:
                continue
            if kind == "row":
                table = found.setdefault(key, {})
                for column, cell in value.items():
                    table.setdefault(column, []).append(cell)
            elif kind == "list":
                found[key] = value
            else:
                seen[key] = seen.get(key, 0) + 1
                if seen[key] == 1:
                    found[key] = value
                elif seen[key] == 2:
                    found[key] = [found[key], value]
                else:
                    found[key].append(value)
        return found

    def get_status(self) -> str:
        return "Running"

    # -- tags and properties: this process only ---------------------------------------------------

    def tag(self, key: str, value: Any = None) -> None:
        self._note_kept_here("tags")
        self._tags[key] = "" if value is None else value

    def set_tags(self, tags: dict[str, Any]) -> None:
        self._note_kept_here("tags")
        self._tags.update(tags)

    def get_tags(self) -> dict[str, Any]:
        return dict(self._tags)

    def add_properties(self, properties: dict[str, Any]) -> None:
        self._note_kept_here("properties")
        self._properties.update(properties)

    def get_properties(self) -> dict[str, Any]:
        return dict(self._properties)

    def _note_kept_here(self, what: str) -> None:
        if not getattr(self, f"_noted_{what}", False):
            setattr(self, f"_noted_{what}", True)
            print(
                f"[pipesched] run {what} are kept for this step process only: pipesched "
                "records no run tags or properties; log them as metrics to keep them",
                file=sys.stderr,
                flush=True,
            )

    # -- files: into the step's working directory -------------------------------------------------

    def upload_file(
        self, name: str, path_or_stream: str | os.PathLike[str] | IO[bytes], **kwargs: Any
    ) -> None:
        """Copy a file (or a binary stream) to ``name`` in the step's working directory; put it
        under ``outputs/`` to keep it with the run."""
        target = _pipesched.confined(self._workdir, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if isinstance(path_or_stream, str | os.PathLike):
            _pipesched.copy_file(os.fspath(path_or_stream), target, overwrite=True)
        else:
            with open(target, "wb") as handle:
                handle.write(path_or_stream.read())

    def upload_files(
        self, names: list[str], paths: list[str], return_artifacts: bool = False, **kwargs: Any
    ) -> None:
        for name, path in zip(names, paths, strict=True):
            self.upload_file(name, path)

    def upload_folder(self, name: str, path: str, **kwargs: Any) -> None:
        for file in _pipesched.files_under(path):
            self.upload_file(os.path.join(name, os.path.relpath(file, path)), file)

    def __getattr__(self, name: str) -> NoReturn:
        raise _pipesched.attribute_error("Run", name)


class _OfflineRun(Run):
    """A run outside any pipeline step: metrics are printed. Azure ML's class of that name,
    for scripts that test ``isinstance(run, _OfflineRun)``."""


class _PipelineRun(Run):
    """``run.parent``: the pipeline run, logging into the step's metrics."""

    @property
    def offline(self) -> bool:
        return self._metrics_file is None

    @property
    def parent(self) -> Run | None:
        return None
