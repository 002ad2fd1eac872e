"""Azure ML SDK v1's data objects on pipesched: what a step reads and writes.

Each object only records what the notebook said and where (the file and line that made it);
``scheduler.sdk.build`` turns them into pipeline.yaml's ``data`` (PipelineData,
OutputFileDatasetConfig: intermediate outputs) and ``parameters`` (PipelineParameter, and every
dataset or DataPath a step reads: a ``path`` parameter named after the input, so the script gets
the absolute path as an argument and as ``run.input_datasets[name]``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from scheduler.sdk._warn import ignore_given, ignored, refused

_SDK_DIR = os.path.dirname(os.path.abspath(__file__))


def caller_position() -> tuple[str, int]:
    """(file, line) of the first frame outside scheduler/sdk: the user's line that made the
    object, so validation errors can point at it."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if os.path.dirname(os.path.abspath(filename)) != _SDK_DIR:
            return filename, frame.f_lineno
        frame = frame.f_back
    return "<unknown>", 0


def datastore_name(
    datastore: Any, owner: str = "datastore", argument: str = "datastore"
) -> str | None:
    """A Datastore object (``.name``) or a datastore's name; None when not given. A wrong type
    is refused naming ``owner``'s ``argument`` (e.g. "PipelineData: argument 'datastore'")."""
    if datastore is None:
        return None
    if isinstance(datastore, str):
        return datastore
    name = getattr(datastore, "name", None)
    if not isinstance(name, str):
        raise refused(
            owner,
            argument,
            f"expected a Datastore or a datastore name, got {type(datastore).__name__}",
        )
    return name


# -- intermediate outputs --------------------------------------------------------------------


class _Output:
    """What PipelineData and OutputFileDatasetConfig share: a data item with one producer."""

    _auto_name = "output"

    def __init__(self, name: str | None, datastore: Any) -> None:
        self.name = name
        self.datastore = datastore
        self._datastore_name = datastore_name(datastore, type(self).__name__)
        self._where = caller_position()
        self._producers: list[Any] = []  # steps that listed it as an output (for closure)

    def _input(self, input_name: str | None = None) -> DataInput:
        return DataInput(self, input_name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class PipelineData(_Output):
    """Intermediate data: written by the step that lists it in ``outputs``, read by the steps
    that list it in ``inputs`` or pass it in ``arguments`` (``${{data.NAME}}``)."""

    def __init__(
        self,
        name: str,
        datastore: Any = None,
        output_name: str | None = None,
        output_mode: str = "mount",
        output_path_on_compute: str | None = None,
        output_overwrite: bool | None = None,
        data_type: str | None = None,
        is_directory: bool | None = None,
        pipeline_output_name: str | None = None,
        training_output: Any = None,
    ) -> None:
        # output_name is the name Azure lists the output under: here, the data's name.
        super().__init__(output_name or name, datastore)
        folder = "a step writes its output folder in place on the datastore"
        ignore_given(
            "PipelineData",
            {
                "output_mode": output_mode if output_mode != "mount" else None,
                "output_path_on_compute": output_path_on_compute,
                "output_overwrite": output_overwrite,
                "data_type": data_type,
                "is_directory": is_directory,
                "pipeline_output_name": pipeline_output_name,
                "training_output": training_output,
            },
            {
                "output_mode": folder,
                "output_path_on_compute": folder,
                "output_overwrite": "each run writes a fresh folder",
                "data_type": "data is a folder of files",
                "is_directory": "data is always a folder",
                "pipeline_output_name": "every step's outputs are listed by `pipesched show`",
                "training_output": "models are files a step writes into its outputs",
            },
        )

    def as_dataset(self) -> DataInput:
        return self._input()

    def as_input(self, input_name: str | None = None) -> DataInput:
        return self._input(input_name)

    def as_download(
        self,
        input_name: str | None = None,
        path_on_compute: str | None = None,
        overwrite: bool | None = None,
    ) -> DataInput:
        _ignore_binding("PipelineData.as_download", None, path_on_compute, overwrite)
        return self._input(input_name)

    def as_mount(self, input_name: str | None = None) -> DataInput:
        return self._input(input_name)

    def create_input_binding(self, input_name: str | None = None, **kwargs: Any) -> DataInput:
        return self._input(input_name)

    def parse_delimited_files(self, *args: Any, **kwargs: Any) -> DataInput:
        return self._input()

    def parse_parquet_files(self, *args: Any, **kwargs: Any) -> DataInput:
        return self._input()


class OutputFileDatasetConfig(_Output):
    """The later name for an intermediate output. Passed as such in a step's ``arguments`` it is
    that step's output (as in Azure); ``.as_input()`` makes it another step's input."""

    def __init__(
        self,
        name: str | None = None,
        destination: Any = None,
        source: str | None = None,
        partition_format: str | None = None,
    ) -> None:
        store = None
        if destination is not None:
            if not isinstance(destination, tuple) or len(destination) not in (1, 2):
                raise refused(
                    "OutputFileDatasetConfig",
                    "destination",
                    "expected a (datastore, 'path') tuple",
                )
            store = destination[0]
            if len(destination) == 2 and destination[1]:
                ignored(
                    "OutputFileDatasetConfig",
                    "destination path",
                    "outputs live in <datastore>/.pipesched/outputs/<run>/<step>/<data>/; "
                    "the datastore is kept",
                )
        super().__init__(name, store)
        ignore_given(
            "OutputFileDatasetConfig",
            {"source": source, "partition_format": partition_format},
            {
                "source": "the step writes into the folder it is given as an argument",
                "partition_format": "data is a folder of files",
            },
        )

    def as_input(self, name: str | None = None) -> DataInput:
        return self._input(name)

    def as_mount(self, disable_metadata_cache: bool = False) -> OutputFileDatasetConfig:
        return self

    def as_upload(
        self, overwrite: bool = False, source_globs: Any = None
    ) -> OutputFileDatasetConfig:
        return self

    def register_on_complete(
        self, name: str, description: str | None = None, tags: Any = None
    ) -> OutputFileDatasetConfig:
        ignored(
            "OutputFileDatasetConfig",
            "register_on_complete",
            "pipesched has no dataset registry; outputs are listed by `pipesched show`",
        )
        return self

    def read_delimited_files(self, *args: Any, **kwargs: Any) -> DataInput:
        return self._input()

    def read_parquet_files(self, *args: Any, **kwargs: Any) -> DataInput:
        return self._input()


class DataInput:
    """An intermediate output seen by a consuming step (``as_input()``, ``as_mount()``...):
    the script receives its folder."""

    def __init__(self, data: _Output, input_name: str | None = None) -> None:
        self.data = data
        self.input_name = input_name
        if input_name is not None and input_name != data.name and data.name is not None:
            ignored(
                type(data).__name__,
                "input name",
                "run.input_datasets lists intermediate data under the data's own name",
                stacklevel=5,  # ignored, __init__, _input, as_input, the user's line
            )

    def as_input(self, name: str | None = None) -> DataInput:
        return self

    def as_mount(self, *args: Any, **kwargs: Any) -> DataInput:
        return self

    def as_download(self, *args: Any, **kwargs: Any) -> DataInput:
        return self

    def as_named_input(self, name: str) -> DataInput:
        return self

    def __repr__(self) -> str:
        return f"DataInput({self.data!r})"


# -- parameters and paths ---------------------------------------------------------------------


class PipelineParameter:
    """A run parameter: its type comes from the default (bool, int, float, str; a DataPath or a
    dataset default makes it a ``path``)."""

    def __init__(self, name: str, default_value: Any) -> None:
        self.name = name
        self.default_value = default_value
        self._where = caller_position()
        if path_default(default_value) is None and not isinstance(
            default_value, bool | int | float | str | type(None)
        ):
            raise refused(
                "PipelineParameter",
                "default_value",
                f"a {type(default_value).__name__} cannot be a parameter's default",
                hint="use a bool, int, float, str, DataPath or Dataset.File.from_files(...)",
            )

    def _declaration(self) -> dict[str, Any]:
        path = path_default(self.default_value)
        if path is not None:
            return {"type": "path", "default": path}
        value = self.default_value
        kind = {bool: "bool", int: "int", float: "float"}.get(type(value), "str")
        return {"type": kind} if value is None else {"type": kind, "default": value}

    def __repr__(self) -> str:
        return f"PipelineParameter(name={self.name!r}, default_value={self.default_value!r})"


def path_default(value: Any) -> str | None:
    """``datastore://NAME/path`` of a DataPath, DataReference or file dataset; else None."""
    return value._datastore_uri() if isinstance(value, DatastoreFolder) else None


class DatastoreFolder:
    """What can stand for a datastore folder: a DataPath or DataReference here, a file dataset
    or its named input in ``scheduler.sdk.datasets`` (which builds on this module). A
    parameter whose default is one becomes a ``path`` parameter of that folder."""

    def _datastore_uri(self) -> str | None:
        """``datastore://NAME/path``, or None when it names no folder after all."""
        raise NotImplementedError


class DataPath(DatastoreFolder):
    """A path on a datastore. Used as a parameter's default, in a ``(param, binding)`` tuple, or
    on its own (then it becomes a path parameter of that name, like a dataset)."""

    def __init__(
        self, datastore: Any = None, path_on_datastore: str | None = None, name: str | None = None
    ) -> None:
        datastore_name(datastore, "DataPath")  # a wrong type fails at the user's line
        self.datastore = datastore
        self.path_on_datastore = path_on_datastore
        self.name = name
        self._where = caller_position()

    def _uri(self) -> str:
        store = datastore_name(self.datastore, "DataPath") or "default"
        return f"datastore://{store}/{(self.path_on_datastore or '').lstrip('/')}"

    def _datastore_uri(self) -> str:
        return self._uri()

    def create_data_reference(
        self, data_reference_name: str | None = None, datapath_compute_binding: Any = None
    ) -> DataReference:
        return DataReference(
            self.datastore, data_reference_name or self.name, self.path_on_datastore
        )

    def __repr__(self) -> str:
        return f"DataPath({self._uri()!r})"


def _ignore_binding(owner: str, mode: str | None, path_on_compute: Any, overwrite: Any) -> None:
    """Warn (once each) for Azure's ways of bringing data to the compute: steps here read and
    write the datastore's folder in place, whatever the mode."""
    in_place = "steps read the datastore's folder in place"
    ignore_given(
        owner,
        {
            "mode": mode if mode not in ("mount", None) else None,
            "path_on_compute": path_on_compute,
            "overwrite": overwrite,
        },
        dict.fromkeys(("mode", "path_on_compute", "overwrite"), in_place),
    )


class DataPathComputeBinding:
    """How a DataPath reaches the compute: here always the absolute path of the folder."""

    def __init__(
        self, mode: str = "mount", path_on_compute: str | None = None, overwrite: bool = False
    ) -> None:
        self.mode = mode
        ignore_given(
            "DataPathComputeBinding",
            {"path_on_compute": path_on_compute, "overwrite": overwrite},
            dict.fromkeys(
                ("path_on_compute", "overwrite"), "steps read the datastore's folder in place"
            ),
        )


class DataReference(DatastoreFolder):
    """Azure's older DataReference (``datastore.path(...)``): a DataPath by another name."""

    def __init__(
        self,
        datastore: Any,
        data_reference_name: str | None = None,
        path_on_datastore: str | None = None,
        mode: str = "mount",
        path_on_compute: str | None = None,
        overwrite: bool = False,
    ) -> None:
        datastore_name(datastore, "DataReference")  # a wrong type fails at the user's line
        self.datastore = datastore
        self.data_reference_name = data_reference_name
        self.path_on_datastore = path_on_datastore
        self.mode = mode
        _ignore_binding("DataReference", mode, path_on_compute, overwrite)
        self._where = caller_position()

    @property
    def name(self) -> str | None:
        return self.data_reference_name

    def _uri(self) -> str:
        store = datastore_name(self.datastore, "DataReference") or "default"
        return f"datastore://{store}/{(self.path_on_datastore or '').lstrip('/')}"

    def _datastore_uri(self) -> str:
        return self._uri()

    def as_mount(self) -> DataReference:
        return self

    def as_download(
        self, path_on_compute: str | None = None, overwrite: bool = False
    ) -> DataReference:
        _ignore_binding("DataReference.as_download", None, path_on_compute, overwrite)
        return self

    def path(
        self, path: str | None = None, data_reference_name: str | None = None
    ) -> DataReference:
        joined = "/".join(p for p in (self.path_on_datastore, path) if p)
        return DataReference(self.datastore, data_reference_name, joined)


# -- datasets ---------------------------------------------------------------------------------


def resolve_path(path: Any) -> Path:
    """An absolute path for a user-given directory (relative to the working directory, as
    Azure resolves ``source_directory``)."""
    return Path(os.path.normpath(os.path.abspath(os.fspath(path))))
