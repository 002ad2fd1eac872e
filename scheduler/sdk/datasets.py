"""Azure ML's datasets over datastore paths.

- File datasets: ``Dataset.File.from_files(path=(datastore, "folder"))`` and
  ``as_named_input(name)``, a folder of a datastore that a step reads as a ``path`` parameter.
- Tabular datasets: ``Dataset.Tabular.from_delimited_files`` / ``from_parquet_files`` over
  ``(datastore, "folder/*.csv")``, DataPaths or lists of them. In the notebook,
  ``to_pandas_dataframe()``, ``take``/``skip`` and ``partition_by`` read the files where the
  workspace sees its datastores (embedded only: a daemon's datastores are on its machine). As a
  ParallelRunStep input, the step gets the path parameter plus the ``tabular`` reading options, and
  ``run(mini_batch)`` receives DataFrames.

pandas (and pyarrow, for parquet) are optional: imported only when rows are read, with an error
that says what to install. pipesched has no dataset registry: ``register`` names the dataset.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scheduler.core.errors import PipeschedError
from scheduler.definitions.steps import TabularInput
from scheduler.executor.parallel import tables
from scheduler.executor.parallel.spec import list_input
from scheduler.sdk._warn import SdkError, ignore_given, ignored, refused
from scheduler.sdk.data import PipelineParameter
from scheduler.sdk.datapath import (
    DataPath,
    DataReference,
    DatastoreFolder,
    caller_position,
    datastore_name,
    path_default,
)

_PANDAS = " (or: pip install 'pipesched[examples]')"


class AbstractDataset(DatastoreFolder):
    """What file and tabular datasets share (Azure's base class of the same name)."""

    name: str | None
    _partition_format: str | None = None

    @property
    def id(self) -> str | None:
        """The dataset's ``datastore://NAME/path``: there is no dataset registry here, so what
        identifies a dataset (in a REST body's ``SavedDataSetReference``) is where it reads."""
        return path_default(self)

    @property
    def partition_keys(self) -> list[str]:
        """The keys of ``partition_format`` (values taken from each file's path)."""
        if not self._partition_format:
            return []
        return tables.PartitionFormat(self._partition_format).keys


class FileDataset(AbstractDataset):
    """Files in a datastore folder. A step reads it through ``as_named_input(name)``: a path
    parameter ``name`` whose default is the folder."""

    def __init__(
        self, uri: str, name: str | None = None, partition_format: str | None = None
    ) -> None:
        self._uri = uri
        self.name = name
        self._partition_format = partition_format
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
        if not isinstance(dataset, AbstractDataset | PipelineParameter | DataPath | DataReference):
            raise refused(
                "DatasetConsumptionConfig",
                "dataset",
                f"a {type(dataset).__name__} cannot be read by a step here",
                hint="use Dataset.File.from_files(path=(datastore, 'folder')) or "
                "Dataset.Tabular.from_delimited_files(path=(datastore, 'folder/*.csv'))",
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
_REGISTRY_HINT = (
    "build it with Dataset.File.from_files(path=(datastore, 'folder')) or "
    "Dataset.Tabular.from_delimited_files(path=(datastore, 'folder/*.csv'))"
)


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
        _check_partition_format("Dataset.File.from_files", partition_format)
        if isinstance(path, tuple) and len(path) == 2:
            store = datastore_name(path[0], "Dataset.File.from_files", "path") or "default"
            uri = f"datastore://{store}/{str(path[1]).lstrip('/')}"
            return FileDataset(uri, partition_format=partition_format)
        if isinstance(path, DataPath | DataReference):
            return FileDataset(path._uri(), path.name, partition_format=partition_format)
        if isinstance(path, str) and path.startswith("datastore://"):
            return FileDataset(path, partition_format=partition_format)
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


# -- tabular datasets ---------------------------------------------------------------------------

_DatastorePath = tuple[Any, str]  # (a Datastore, or a datastore's name; the path in it)
#: Azure's PromoteHeadersBehavior, by name and value: does each file's first line name the columns?
_HEADERS = {
    "NO_HEADERS": False,
    "ALL_FILES_HAVE_SAME_HEADERS": True,
    "COMBINE_ALL_FILES_HEADERS": True,
    0: False,
    2: True,
    3: True,
}
_TYPE_NAMES = {
    "string": "string",
    "str": "string",
    "int": "int",
    "long": "int",
    "float": "float",
    "double": "float",
    "bool": "bool",
    "boolean": "bool",
    "datetime": "datetime",
}


class DataType:
    """Azure's column types for ``set_column_types``: ``DataType.to_long()`` and the like."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    @staticmethod
    def to_string() -> DataType:
        return DataType("string")

    @staticmethod
    def to_long() -> DataType:
        return DataType("int")

    @staticmethod
    def to_float(decimal_mark: str = ".") -> DataType:
        if decimal_mark != ".":
            raise refused("DataType.to_float", "decimal_mark", "numbers are read with a '.'")
        return DataType("float")

    @staticmethod
    def to_bool() -> DataType:
        return DataType("bool")

    @staticmethod
    def to_datetime(formats: str | list[str] | None = None) -> DataType:
        if isinstance(formats, list):
            if len(formats) > 1:
                raise refused("DataType.to_datetime", "formats", "a column is read with one format")
            formats = formats[0] if formats else None
        return DataType(f"datetime:{formats}" if formats else "datetime")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DataType) and other.kind == self.kind

    def __hash__(self) -> int:
        return hash(self.kind)

    def __repr__(self) -> str:
        return f"DataType({self.kind!r})"


def _column_types(owner: str, given: Any) -> dict[str, str]:
    """``set_column_types``: a DataType, a type name or a Python type per column."""
    types: dict[str, str] = {}
    for column, kind in (given or {}).items():
        if isinstance(kind, DataType):
            types[str(column)] = kind.kind
            continue
        name = kind.__name__ if isinstance(kind, type) else str(kind)
        base, _, fmt = name.partition(":")
        known = _TYPE_NAMES.get(base.lower())
        if known is None:
            raise refused(
                owner,
                "set_column_types",
                f"column {column!r}: cannot read a column as {kind!r}",
                hint="DataType.to_string(), to_long(), to_float(), to_bool() or to_datetime()",
            )
        types[str(column)] = f"{known}:{fmt}" if fmt and known == "datetime" else known
    return types


def _header(owner: str, header: Any) -> bool:
    key = getattr(header, "name", header)
    if isinstance(key, bool):
        return key
    if key in _HEADERS:
        return _HEADERS[key]
    if key in (1, "ONLY_FIRST_FILE_HAS_HEADERS"):
        raise refused(
            owner,
            "header",
            "every file is read on its own, so each needs its header line (or none has one)",
            hint="give every file the header line, or header=False",
        )
    raise refused(owner, "header", f"{header!r} is not a header behaviour")


def _check_partition_format(owner: str, partition_format: str | None) -> None:
    if partition_format is None:
        return
    try:
        tables.PartitionFormat(partition_format)
    except ValueError as exc:
        raise refused(owner, "partition_format", str(exc), hint="'{key}/{other}/*.csv'") from None


def _dataset_paths(owner: str, path: Any) -> list[_DatastorePath]:
    """Azure's ``path=`` forms: ``(datastore, 'folder/*.csv')``, a DataPath or DataReference,
    a ``datastore://`` string, or a list of them."""
    items = path if isinstance(path, list) else [path]
    found: list[_DatastorePath] = []
    for item in items:
        if isinstance(item, tuple) and len(item) == 2:
            datastore_name(item[0], owner, "path")  # a wrong type fails at the user's line
            found.append((item[0] or "default", str(item[1])))
        elif isinstance(item, DataPath | DataReference):
            found.append((item.datastore or "default", item.path_on_datastore or ""))
        elif isinstance(item, str) and item.startswith("datastore://"):
            store, _, relative = item.removeprefix("datastore://").partition("/")
            found.append((store, relative))
        else:
            raise refused(
                owner,
                "path",
                "only datastore paths can be read (no URLs or local paths outside a datastore)",
                hint="path=(ws.get_default_datastore(), 'folder/*.csv')",
            )
        if ".." in Path(found[-1][1]).parts:
            raise refused(owner, "path", f"{found[-1][1]!r} leads out of the datastore")
    if not found:
        raise refused(owner, "path", "no path was given")
    return found


def _uri(store: Any, relative: str) -> str:
    return f"datastore://{datastore_name(store) or 'default'}/{relative.lstrip('/')}"


def _local_root(owner: str, store: Any) -> Path:
    """The folder of a datastore, where this notebook can read it."""
    if store is None or isinstance(store, str):
        raise SdkError(
            f"{owner}: the datastore is given by its name ({store!r}), so its folder is not "
            "known here",
            hint="give the Datastore object: path=(ws.get_default_datastore(), 'folder/*.csv')",
        )
    local = getattr(store, "local_path", None)
    if local is None:
        raise SdkError(
            f"{owner}: datastore '{store.name}' is on the daemon's machine, where this "
            "notebook cannot read it",
            hint="read the rows in a step (a ParallelRunStep's run() gets DataFrames), or use "
            "a workspace from the config file on the daemon's machine",
        )
    return Path(local)


class TabularDataset(AbstractDataset):
    """Delimited or parquet files on a datastore, read as rows. ``to_pandas_dataframe()`` reads
    them here; as a ParallelRunStep input, each ``run(mini_batch)`` gets a DataFrame."""

    def __init__(
        self,
        paths: list[_DatastorePath],
        options: dict[str, Any],
        partition_format: str | None = None,
        name: str | None = None,
        window: tuple[tuple[str, int], ...] = (),
    ) -> None:
        self._paths = paths
        self._options = options
        self._partition_format = partition_format
        self.name = name
        self._window = window  # take/skip, in order
        self._where = caller_position()
        self._downloads: tempfile.TemporaryDirectory[str] | None = None
        self._downloaded: set[tuple[str, str]] = set()

    # -- Azure's methods -----------------------------------------------------------------------

    def as_named_input(self, name: str) -> DatasetConsumptionConfig:
        if self._datastore_uri() is None:
            raise refused(
                "TabularDataset",
                "as_named_input",
                "a step reads one path, and this dataset has several",
                hint="put the files under one folder, or match them with one glob: "
                "path=(datastore, 'folder/*.csv')",
            )
        return DatasetConsumptionConfig(name, self)

    def register(
        self,
        workspace: Any,
        name: str,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        create_new_version: bool = False,
    ) -> TabularDataset:
        ignored(
            "TabularDataset",
            "register",
            "pipesched has no dataset registry; the dataset is its datastore path",
        )
        if self.name is None:
            self.name = name
        return self

    def take(self, count: int) -> TabularDataset:
        """The first ``count`` records (for ``to_pandas_dataframe``)."""
        return self._windowed("take", count)

    def skip(self, count: int) -> TabularDataset:
        """All but the first ``count`` records (for ``to_pandas_dataframe``)."""
        return self._windowed("skip", count)

    def to_pandas_dataframe(
        self, on_error: str = "null", out_of_range_datetime: str = "null"
    ) -> Any:
        """Every record of the files, in path order, as one pandas DataFrame."""
        owner = "TabularDataset.to_pandas_dataframe"
        ignore_given(
            owner,
            {
                "on_error": None if on_error == "null" else on_error,
                "out_of_range_datetime": None
                if out_of_range_datetime == "null"
                else out_of_range_datetime,
            },
            {
                "on_error": "values that cannot be read as their column's type become nulls",
                "out_of_range_datetime": "dates that cannot be read become nulls",
            },
        )
        start, end = self._bounds()
        pieces = self._files(owner)
        if end is not None:  # read no further than the last record wanted
            frames, rows = [], 0
            for piece in pieces:
                if rows >= end:
                    break
                frames.append(self._read(owner, [piece]))
                rows += len(frames[-1])
            pandas = self._pandas(owner)
            frame = pandas.concat(frames, ignore_index=True) if frames else self._read(owner, [])
        else:
            frame = self._read(owner, pieces)
        if start or end is not None:
            frame = frame.iloc[start:end].reset_index(drop=True)
        return frame

    def partition_by(
        self,
        partition_keys: list[str],
        target: Any,
        name: str | None = None,
        show_progress: bool = True,
        partition_as_file_dataset: bool = False,
    ) -> TabularDataset | FileDataset:
        """A copy of the records in ``target/<guid>/<key value>/.../part-00000.csv``, one folder
        level per key, and the dataset of it (partitioned: its ``partition_keys`` are these).
        CSV rather than Azure's parquet, so any step interpreter with pandas reads it; column
        types are kept through ``set_column_types``."""
        owner = "TabularDataset.partition_by"
        say: Callable[[str], None] = print if show_progress else (lambda text: None)
        say("Validating arguments.")
        keys = [partition_keys] if isinstance(partition_keys, str) else list(partition_keys)
        if not keys:
            raise SdkError(f"{owner}: partition_keys cannot be empty")
        if len(keys) != len(set(keys)):
            raise SdkError(f"{owner}: partition_keys cannot have duplicates: {keys}")
        store, relative = _partition_target(owner, target)
        remote = getattr(store, "local_path", None) is None and hasattr(store, "upload")
        root = None if remote else _local_root(owner, store)
        frame = self.to_pandas_dataframe()
        invalid = [k for k in keys if k not in frame.columns]
        if invalid:
            raise SdkError(
                f"{owner}: {invalid} are invalid partition keys",
                hint=f"columns: {', '.join(map(str, frame.columns))}",
            )
        say("Arguments validated.")
        folder = f"{relative.strip('/')}/{uuid.uuid4()}".lstrip("/")
        say(f"Uploading file to /{folder}/")
        if root is not None:
            _write_partitions(frame, keys, root / folder)
        else:  # the datastore is on a daemon's machine: written here, then uploaded
            with tempfile.TemporaryDirectory(prefix="pipesched-partitions-") as written:
                _write_partitions(frame, keys, Path(written))
                store.upload(written, target_path=folder, show_progress=False)
        say("Successfully uploaded file to datastore.")
        say("Creating a new dataset.")
        levels = "/".join(
            f"{{{k}:yyyyMMddHHmmss}}" if frame[k].dtype.kind == "M" else f"{{{k}}}" for k in keys
        )
        files = f"{folder}/{'*/' * len(keys)}*.csv"
        fmt = f"{folder}/{levels}/*.csv"
        dataset: TabularDataset | FileDataset
        if partition_as_file_dataset:
            dataset = FileDataset(_uri(store, files), name, partition_format=fmt)
        else:
            types = {str(c): _type_of(frame[c].dtype) for c in frame.columns}
            options = {"format": "delimited", "set_column_types": types}
            dataset = TabularDataset([(store, files)], options, fmt, name)
        say("Successfully created a new dataset.")
        return dataset

    # -- for steps -----------------------------------------------------------------------------

    def _datastore_uri(self) -> str | None:
        if len(self._paths) != 1:
            return None
        return _uri(*self._paths[0])

    def _step_options(self) -> dict[str, Any]:
        """The step's ``tabular:`` mapping: the format, then what differs from the defaults."""
        chosen = TabularInput(**self._options).model_dump()
        defaults = TabularInput().model_dump()
        return {"format": chosen["format"]} | {
            k: v for k, v in chosen.items() if k != "format" and v != defaults[k]
        }

    def __repr__(self) -> str:
        return f"TabularDataset({[_uri(*p) for p in self._paths]!r})"

    # -- reading here ----------------------------------------------------------------------------

    def _windowed(self, kind: str, count: int) -> TabularDataset:
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise SdkError(f"TabularDataset.{kind}: count must be a whole number >= 0")
        return TabularDataset(
            self._paths,
            self._options,
            self._partition_format,
            self.name,
            (*self._window, (kind, count)),
        )

    def _bounds(self) -> tuple[int, int | None]:
        """The records kept by take/skip: ``[start, end)`` of all of them."""
        start, end = 0, None
        for kind, count in self._window:
            if kind == "skip":
                start = start + count if end is None else min(start + count, end)
            else:
                end = start + count if end is None else min(start + count, end)
        return start, end

    def _files(self, owner: str) -> list[tables.Piece]:
        """Every file of every path, as whole pieces (with partition values)."""
        fmt = tables.PartitionFormat(self._partition_format) if self._partition_format else None
        found: list[tables.Piece] = []
        for store, relative in self._paths:
            pattern = os.path.join(
                self._readable_root(owner, store, relative), relative.lstrip("/")
            )
            try:
                files = list_input(pattern)
            except PipeschedError:
                continue  # nothing there
            try:
                found.extend(tables.whole_files(files, fmt, tables.input_base(pattern)))
            except tables.TableError as exc:
                raise SdkError(f"{owner}: {exc}") from None
        return found

    def _readable_root(self, owner: str, store: Any, relative: str) -> Path:
        """The datastore's folder; for a datastore on a daemon's machine, a private folder
        here into which the files under the path's fixed leading part are downloaded first
        (kept while this dataset lives, so a second read downloads nothing)."""
        if getattr(store, "local_path", None) is not None or not hasattr(store, "download"):
            return _local_root(owner, store)
        if self._downloads is None:
            self._downloads = tempfile.TemporaryDirectory(prefix="pipesched-dataset-")
        root = Path(self._downloads.name) / store.name
        fixed = re.split(r"[*?\[]", relative.lstrip("/"), maxsplit=1)[0]
        prefix = fixed.rpartition("/")[0] + "/" if "/" in fixed else fixed
        if (store.name, prefix) not in self._downloaded:
            store.download(root, prefix=prefix or None, overwrite=True, show_progress=False)
            self._downloaded.add((store.name, prefix))
        return root

    def _pandas(self, owner: str) -> Any:
        try:
            return tables.pandas_module(self._options, _PANDAS)
        except tables.TableError as exc:
            raise SdkError(f"{owner}: {exc}") from None

    def _read(self, owner: str, pieces: list[tables.Piece]) -> Any:
        self._pandas(owner)
        try:
            return tables.read_pieces(pieces, self._options, self._partition_format)
        except tables.TableError as exc:
            raise SdkError(f"{owner}: {exc}") from None

    def _validate(self, owner: str) -> None:
        """Azure's ``validate=True``: there must be data to read (checked where the datastores
        are on this machine; through a daemon, when a step reads them)."""
        roots = [getattr(store, "local_path", None) for store, _ in self._paths]
        if not all(isinstance(root, Path) for root in roots):
            return
        if not self._files(owner):
            raise SdkError(
                f"{owner}: cannot load any data from {', '.join(_uri(*p) for p in self._paths)}",
                hint="check the path, or pass validate=False to create the dataset anyway",
            )


def _partition_target(owner: str, target: Any) -> _DatastorePath:
    """``target``: a Datastore, ``(datastore, 'path')``, or a DataPath."""
    if isinstance(target, tuple) and len(target) == 2:
        return target[0], str(target[1] or "")
    if isinstance(target, DataPath | DataReference):
        return target.datastore, target.path_on_datastore or ""
    if hasattr(target, "local_path"):
        return target, ""
    raise refused(owner, "target", f"a {type(target).__name__} is not a datastore path")


def _type_of(dtype: Any) -> str:
    return {"b": "bool", "i": "int", "u": "int", "f": "float", "M": "datetime"}.get(
        getattr(dtype, "kind", "O"), "string"
    )


def _folder_name(value: Any) -> str:
    """A key value as a folder name (what the dataset's partition_format reads back)."""
    if value is None or value != value:  # None, NaN, NaT
        return tables.NULL_PARTITION
    if hasattr(value, "strftime"):
        return str(value.strftime("%Y%m%d%H%M%S"))
    text = str(value).replace("%", "%25").replace("/", "%2F")
    return (
        text if text not in ("", ".", "..") else text.replace(".", "%2E") or tables.NULL_PARTITION
    )


def _write_partitions(frame: Any, keys: list[str], folder: Path) -> None:
    """Each group of records under ``folder/<value>/.../part-00000.csv`` (without the key
    columns, which the folder names hold); written beside it and moved into place at once."""
    work = folder.with_name(f".{folder.name}.partial")
    work.mkdir(parents=True)
    try:
        rest = [c for c in frame.columns if c not in keys]
        for values, group in frame.groupby(keys, dropna=False, sort=True):
            values = values if isinstance(values, tuple) else (values,)
            place = work.joinpath(*(_folder_name(v) for v in values))
            place.mkdir(parents=True, exist_ok=True)
            group[rest].to_csv(place / "part-00000.csv", index=False)
        work.rename(folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _tabular(
    owner: str, path: Any, options: dict[str, Any], partition_format: str | None, validate: bool
) -> TabularDataset:
    _check_partition_format(owner, partition_format)
    dataset = TabularDataset(_dataset_paths(owner, path), options, partition_format)
    if validate:
        dataset._validate(owner)
    return dataset


class _TabularFactory:
    """``Dataset.Tabular``: delimited and parquet files on datastores."""

    @staticmethod
    def from_delimited_files(
        path: Any,
        validate: bool = True,
        include_path: bool = False,
        infer_column_types: bool = True,
        set_column_types: dict[str, Any] | None = None,
        separator: str = ",",
        header: Any = True,
        partition_format: str | None = None,
        support_multi_line: bool = False,
        empty_as_string: bool = False,
        encoding: str = "utf8",
    ) -> TabularDataset:
        owner = "Dataset.Tabular.from_delimited_files"
        if not isinstance(separator, str) or not separator:
            raise refused(owner, "separator", f"{separator!r} is not a separator")
        if encoding not in tables.ENCODINGS:
            raise refused(
                owner, "encoding", f"{encoding!r} is not known", hint=", ".join(tables.ENCODINGS)
            )
        options = {
            "format": "delimited",
            "separator": separator,
            "header": _header(owner, header),
            "encoding": encoding,
            "infer_column_types": bool(infer_column_types),
            "set_column_types": _column_types(owner, set_column_types),
            "include_path": bool(include_path),
            "support_multi_line": bool(support_multi_line),
            "empty_as_string": bool(empty_as_string),
        }
        return _tabular(owner, path, options, partition_format, validate)

    @staticmethod
    def from_parquet_files(
        path: Any,
        validate: bool = True,
        include_path: bool = False,
        set_column_types: dict[str, Any] | None = None,
        partition_format: str | None = None,
    ) -> TabularDataset:
        owner = "Dataset.Tabular.from_parquet_files"
        options = {
            "format": "parquet",
            "include_path": bool(include_path),
            "set_column_types": _column_types(owner, set_column_types),
        }
        return _tabular(owner, path, options, partition_format, validate)

    @staticmethod
    def from_json_lines_files(*args: Any, **kwargs: Any) -> Any:
        raise refused(
            "Dataset.Tabular",
            "from_json_lines_files",
            "delimited and parquet files are read as tables here",
            hint="write the records as CSV or parquet and use from_delimited_files or "
            "from_parquet_files",
        )

    @staticmethod
    def from_sql_query(*args: Any, **kwargs: Any) -> Any:
        raise refused(
            "Dataset.Tabular",
            "from_sql_query",
            "datasets read datastore files, not databases",
            hint="a sql step (type: sql) exports the query's rows to CSV; read that with "
            "from_delimited_files",
        )


class Dataset:
    """Azure's Dataset entry point: ``Dataset.File.from_files(...)``,
    ``Dataset.Tabular.from_delimited_files(...)``."""

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
