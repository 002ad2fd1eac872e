"""Azure ML SDK v1's outputs and parameters on pipesched: what one step writes for another to
read (PipelineData, OutputFileDatasetConfig and the DataInput a consumer gets) and the run's
parameters (PipelineParameter).

Each object only records what the notebook said and where (the file and line that made it);
``scheduler.sdk.build`` turns them into pipeline.yaml's ``data`` (PipelineData,
OutputFileDatasetConfig: intermediate outputs) and ``parameters`` (PipelineParameter, and every
dataset or DataPath a step reads: a ``path`` parameter named after the input, so the script gets
the absolute path as an argument and as ``run.input_datasets[name]``). Datastore references
(DataPath, DataReference) live in ``scheduler.sdk.datapath``.
"""

from __future__ import annotations

from typing import Any

from scheduler.sdk._warn import ignore_given, ignored, refused
from scheduler.sdk.datapath import _ignore_binding, caller_position, datastore_name, path_default

# -- intermediate outputs ----------------------------------------------------------------------


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

    _file_name: str | None = None  # PipelineData(is_directory=False) sets it

    def _path_suffix(self) -> str:
        """What follows the data's folder in a step's argument: ``/NAME`` for a one-file
        output (a step writes, and the next one reads, that file), else nothing."""
        return f"/{self._file_name}" if self._file_name else ""

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
        # is_directory=False: one file, as on Azure. Its path is a file named after the data
        # inside the data's folder, in every step that writes or reads it.
        self._file_name = (output_name or name) if is_directory is False else None
        folder = "a step writes its output folder in place on the datastore"
        ignore_given(
            "PipelineData",
            {
                "output_mode": output_mode if output_mode != "mount" else None,
                "output_path_on_compute": output_path_on_compute,
                "output_overwrite": output_overwrite,
                "data_type": data_type,
                "pipeline_output_name": pipeline_output_name,
                "training_output": training_output,
            },
            {
                "output_mode": folder,
                "output_path_on_compute": folder,
                "output_overwrite": "each run writes a fresh folder",
                "data_type": "data is a folder of files, or one file with is_directory=False",
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


# -- parameters --------------------------------------------------------------------------------


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
