"""Azure ML's file datasets: ``Dataset.File.from_files(path=(datastore, "folder"))`` and
``as_named_input(name)``, a folder of a datastore that a step reads as a ``path`` parameter.
pipesched has no dataset registry; tabular datasets are refused (a script gets a path, not a
DataFrame)."""

from __future__ import annotations

from typing import Any

from scheduler.sdk._warn import ignore_given, ignored, refused
from scheduler.sdk.data import PipelineParameter
from scheduler.sdk.datapath import (
    DataPath,
    DataReference,
    DatastoreFolder,
    caller_position,
    datastore_name,
    path_default,
)


class FileDataset(DatastoreFolder):
    """Files in a datastore folder. A step reads it through ``as_named_input(name)``: a path
    parameter ``name`` whose default is the folder."""

    def __init__(self, uri: str, name: str | None = None) -> None:
        self._uri = uri
        self.name = name
        self._where = caller_position()

    def as_named_input(self, name: str) -> DatasetConsumptionConfig:
        return DatasetConsumptionConfig(name, self)

    def as_mount(self, path_on_compute: str | None = None) -> DatasetConsumptionConfig:
        return DatasetConsumptionConfig(None, self)

    def as_download(self, path_on_compute: str | None = None) -> DatasetConsumptionConfig:
        return DatasetConsumptionConfig(None, self)

    def register(
        self, workspace: Any, name: str, description: str | None = None, **kwargs: Any
    ) -> FileDataset:
        ignored(
            "FileDataset",
            "register",
            "pipesched has no dataset registry; the dataset is its datastore folder",
        )
        if self.name is None:
            self.name = name
        return self

    def _datastore_uri(self) -> str:
        return self._uri

    def __repr__(self) -> str:
        return f"FileDataset({self._uri!r})"


class DatasetConsumptionConfig(DatastoreFolder):
    """A named dataset input: becomes the path parameter ``name``."""

    def __init__(
        self, name: str | None, dataset: Any, mode: str = "direct", path_on_compute: Any = None
    ) -> None:
        if not isinstance(dataset, FileDataset | PipelineParameter | DataPath | DataReference):
            raise refused(
                "DatasetConsumptionConfig",
                "dataset",
                f"a {type(dataset).__name__} cannot be read by a step here",
                hint="use Dataset.File.from_files(path=(datastore, 'folder'))",
            )
        self.name = name
        self.dataset = dataset
        self.mode = mode
        self._where = caller_position()

    def _datastore_uri(self) -> str | None:
        return path_default(self.dataset)

    def as_mount(self, path_on_compute: str | None = None) -> DatasetConsumptionConfig:
        return self

    def as_download(self, path_on_compute: str | None = None) -> DatasetConsumptionConfig:
        return self


_REGISTRY = "pipesched has no dataset registry"
_REGISTRY_HINT = "build it with Dataset.File.from_files(path=(datastore, 'folder'))"


class _FileFactory:
    """``Dataset.File``."""

    @staticmethod
    def from_files(
        path: Any,
        validate: bool = True,
        partition_format: str | None = None,
        is_file: bool = False,
    ) -> FileDataset:
        if isinstance(path, list):
            if len(path) != 1:
                raise refused(
                    "Dataset.File.from_files",
                    "path",
                    "a step reads one folder through one path parameter",
                    hint="put the files under one folder, or make one dataset per folder",
                )
            path = path[0]
        ignore_given(
            "Dataset.File.from_files",
            {"partition_format": partition_format},
            {"partition_format": "the script reads the folder's files itself"},
        )
        if isinstance(path, tuple) and len(path) == 2:
            store = datastore_name(path[0], "Dataset.File.from_files", "path") or "default"
            return FileDataset(f"datastore://{store}/{str(path[1]).lstrip('/')}")
        if isinstance(path, DataPath | DataReference):
            return FileDataset(path._uri(), path.name)
        if isinstance(path, str) and path.startswith("datastore://"):
            return FileDataset(path)
        raise refused(
            "Dataset.File.from_files",
            "path",
            "only datastore folders can be read (no URLs or local paths outside a datastore)",
            hint="Dataset.File.from_files(path=(ws.get_default_datastore(), 'folder'))",
        )

    @staticmethod
    def upload_directory(
        src_dir: Any,
        target: Any,
        pattern: str | None = None,
        overwrite: bool = False,
        show_progress: bool = True,
    ) -> FileDataset:
        """Upload the files under ``src_dir`` to ``target`` (``(datastore, "folder")``, a
        DataPath or a Datastore) and return the FileDataset of that folder. ``pattern``
        (fnmatch, on each file's path joined to ``src_dir``) keeps only the files it matches;
        their layout under ``src_dir`` is kept. Files there already are skipped unless
        ``overwrite``."""
        # lazy: building pipelines never needs the datastore's file transfers
        from scheduler.sdk.datastore import Datastore

        say = print if show_progress else (lambda *_: None)
        say("Validating arguments.")
        if pattern is not None and not isinstance(pattern, str):
            raise refused("Dataset.File.upload_directory", "pattern", "expected a str pattern")
        if isinstance(target, tuple) and len(target) == 2:
            store, folder = target
        elif isinstance(target, DataPath | DataReference):
            store, folder = target.datastore, target.path_on_datastore
        else:
            store, folder = target, None
        if not isinstance(store, Datastore):
            raise refused(
                "Dataset.File.upload_directory",
                "target",
                f"expected a Datastore of a workspace, got {type(store).__name__}",
                hint="target=(ws.get_default_datastore(), 'folder')",
            )
        say("Arguments validated.")
        say(f"Uploading file to {folder}")
        if pattern is not None:
            say(f"Filtering files with pattern matching {pattern}")
        store._upload_tree(src_dir, folder, pattern, overwrite, show_progress)
        say("Creating new dataset")
        return _FileFactory.from_files(DataPath(store, folder))


class _TabularFactory:
    """``Dataset.Tabular``: refused. A tabular dataset reaches Azure scripts as an object
    (``to_pandas_dataframe()``), which a path cannot stand in for."""

    @staticmethod
    def _refuse(method: str) -> Exception:
        return refused(
            "Dataset.Tabular",
            method,
            "a tabular dataset reaches the script as an object (to_pandas_dataframe()), and "
            "steps here receive paths",
            hint="use Dataset.File.from_files on the folder and read the files with pandas",
        )

    @staticmethod
    def from_delimited_files(*args: Any, **kwargs: Any) -> Any:
        raise _TabularFactory._refuse("from_delimited_files")

    @staticmethod
    def from_parquet_files(*args: Any, **kwargs: Any) -> Any:
        raise _TabularFactory._refuse("from_parquet_files")

    @staticmethod
    def from_json_lines_files(*args: Any, **kwargs: Any) -> Any:
        raise _TabularFactory._refuse("from_json_lines_files")

    @staticmethod
    def from_sql_query(*args: Any, **kwargs: Any) -> Any:
        raise _TabularFactory._refuse("from_sql_query")


class Dataset:
    """Azure's Dataset entry point: ``Dataset.File.from_files(...)``."""

    File = _FileFactory
    Tabular = _TabularFactory

    @staticmethod
    def get_by_name(workspace: Any, name: str, version: Any = "latest") -> Any:
        raise refused("Dataset", "get_by_name", _REGISTRY, hint=_REGISTRY_HINT)

    @staticmethod
    def get_by_id(workspace: Any, id: str) -> Any:
        raise refused("Dataset", "get_by_id", _REGISTRY, hint=_REGISTRY_HINT)

    @staticmethod
    def get_all(workspace: Any) -> Any:
        raise refused("Dataset", "get_all", _REGISTRY, hint=_REGISTRY_HINT)
