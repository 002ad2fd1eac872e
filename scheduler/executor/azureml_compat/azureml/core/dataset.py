"""``Dataset`` in a step: file and tabular datasets over files on this machine (datastore paths
or local paths), and the inputs of ``run.input_datasets``, which are paths that can also be
read as Azure's dataset objects."""

from __future__ import annotations

import glob
import importlib
import os
import tempfile
from typing import Any, NoReturn

from .. import _pipesched
from ..exceptions import UserErrorException
from .datastore import DataReference, Datastore

_GLOB = frozenset("*?[")


def _resolve(path: Any) -> list[str]:
    """Azure's ``path=`` forms: ``(datastore, "folder")``, a list of them, ``datastore.path()``,
    or a local path; a relative path may be a glob (``"data/*.csv"``, ``"**"``)."""
    items = path if isinstance(path, list) else [path]
    found: list[str] = []
    for item in items:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], Datastore):
            root, relative = item[0]._resolve(""), str(item[1])
        elif isinstance(item, DataReference):
            root, relative = item.datastore._resolve(""), item.path_on_datastore or ""
        elif isinstance(item, str | os.PathLike):
            text = os.fspath(item)
            if "://" in text:
                raise UserErrorException(
                    _pipesched.not_available(
                        f"a dataset over {text!r}",
                        "a step reads datastore folders and local files; put the data in a "
                        "datastore and give (datastore, 'path') instead",
                    )
                )
            root, relative = os.path.dirname(os.path.abspath(text)), os.path.basename(text)
        else:
            raise TypeError(f"a dataset path cannot be {type(item).__name__}: {item!r}")
        if _GLOB & set(relative):
            matches = sorted(glob.glob(os.path.join(root, relative.lstrip("/")), recursive=True))
            found += [_pipesched.confined(root, os.path.relpath(m, root)) for m in matches]
        else:
            found.append(_pipesched.confined(root, relative))
    return found


def _files(paths: list[str]) -> list[str]:
    return [file for path in paths for file in _pipesched.files_under(path)]


def _base(paths: list[str]) -> str:
    """The folder that file paths are given relative to: a lone folder itself, else the
    common folder of everything."""
    if len(paths) == 1 and os.path.isdir(paths[0]):
        return paths[0]
    parents = [p if os.path.isdir(p) else os.path.dirname(p) for p in paths]
    return os.path.commonpath(parents) if parents else os.getcwd()


class _Mount:
    """``dataset.mount()``: the files are already on this machine, so nothing is mounted."""

    def __init__(self, mount_point: str) -> None:
        self.mount_point = mount_point

    def start(self) -> None:
        """Nothing to do."""

    def stop(self) -> None:
        """Nothing to do."""

    def __enter__(self) -> _Mount:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class FileDataset(metaclass=_pipesched.Explaining):
    """Files on this machine, as Azure ML's FileDataset reads them."""

    def __init__(self, paths: list[str]) -> None:
        self._paths = paths

    def to_path(self) -> list[str]:
        base = _base(self._paths)
        return ["/" + os.path.relpath(f, base).replace(os.sep, "/") for f in _files(self._paths)]

    def download(
        self,
        target_path: str | None = None,
        overwrite: bool = False,
        ignore_not_found: bool = False,
    ) -> list[str]:
        """Copy the files to ``target_path`` (a new temporary folder without one); their paths."""
        target = target_path or tempfile.mkdtemp(prefix="dataset-")
        base = _base(self._paths)
        copied = []
        for file in _files(self._paths):
            destination = os.path.join(target, os.path.relpath(file, base))
            if not _pipesched.copy_file(file, destination, overwrite):
                raise UserErrorException(f"{destination} exists: pass overwrite=True to replace it")
            copied.append(destination)
        if not copied and not ignore_not_found:
            raise UserErrorException(f"no files to download in {', '.join(self._paths)}")
        return copied

    def mount(self, mount_point: str | None = None, **kwargs: Any) -> _Mount:
        return _Mount(_base(self._paths))

    def __repr__(self) -> str:
        return f"FileDataset({self._paths!r})"

    def __getattr__(self, name: str) -> NoReturn:
        raise _pipesched.attribute_error(type(self).__name__, name)


def _pandas() -> Any:
    try:
        return importlib.import_module("pandas")
    except ImportError as exc:
        raise ImportError(
            "to_pandas_dataframe() needs pandas in the step's environment: pip install pandas"
        ) from exc


def _read_frames(
    files: list[str], reader: str, separator: str, header: bool, include_path: bool
) -> Any:
    pandas = _pandas()
    frames = []
    for file in files:
        if reader == "parquet":
            frame = pandas.read_parquet(file)
        else:
            frame = pandas.read_csv(file, sep=separator, header=0 if header else None)
        if include_path:
            frame.insert(0, "Path", file)
        frames.append(frame)
    if not frames:
        return pandas.DataFrame()
    return pandas.concat(frames, ignore_index=True)


class TabularDataset(metaclass=_pipesched.Explaining):
    """Delimited or parquet files on this machine, read with pandas."""

    def __init__(
        self,
        paths: list[str],
        reader: str = "delimited",
        separator: str = ",",
        header: bool = True,
        include_path: bool = False,
        limit: int | None = None,
    ) -> None:
        self._paths = paths
        self._reader = reader
        self._separator = separator
        self._header = header
        self._include_path = include_path
        self._limit = limit

    def to_pandas_dataframe(
        self, on_error: str = "null", out_of_range_datetime: str = "null"
    ) -> Any:
        files = [f for f in _files(self._paths) if not os.path.basename(f).startswith(".")]
        frame = _read_frames(files, self._reader, self._separator, self._header, self._include_path)
        return frame if self._limit is None else frame.head(self._limit)

    def take(self, count: int) -> TabularDataset:
        return TabularDataset(
            self._paths, self._reader, self._separator, self._header, self._include_path, count
        )

    def __repr__(self) -> str:
        return f"TabularDataset({self._paths!r})"

    def __getattr__(self, name: str) -> NoReturn:
        raise _pipesched.attribute_error(type(self).__name__, name)


class DatasetInput(str):
    """An entry of ``run.input_datasets``: the input's path (what Azure ML gives for a mounted
    or downloaded input), which also reads as Azure's dataset objects give a direct input:
    ``to_pandas_dataframe()`` (CSV, TSV or parquet files), ``download()``, ``mount()``,
    ``to_path()``."""

    __slots__ = ()

    def _file_dataset(self) -> FileDataset:
        return FileDataset([str(self)])

    def to_pandas_dataframe(
        self, on_error: str = "null", out_of_range_datetime: str = "null"
    ) -> Any:
        files = [f for f in _pipesched.files_under(self) if not os.path.basename(f).startswith(".")]
        suffixes = {os.path.splitext(f)[1].lower() for f in files}
        reader = "parquet" if suffixes and suffixes <= {".parquet"} else "delimited"
        separator = "\t" if suffixes and suffixes <= {".tsv"} else ","
        return _read_frames(files, reader, separator, True, False)

    def download(
        self,
        target_path: str | None = None,
        overwrite: bool = False,
        ignore_not_found: bool = False,
    ) -> list[str]:
        return self._file_dataset().download(target_path, overwrite, ignore_not_found)

    def mount(self, mount_point: str | None = None, **kwargs: Any) -> _Mount:
        return self._file_dataset().mount(mount_point)

    def to_path(self) -> list[str]:
        return self._file_dataset().to_path()

    def __getattr__(self, name: str) -> NoReturn:
        raise _pipesched.attribute_error("Dataset", name)


class _FileFactory(metaclass=_pipesched.Explaining):
    @staticmethod
    def from_files(
        path: Any, validate: bool = True, partition_format: str | None = None, is_file: bool = False
    ) -> FileDataset:
        return FileDataset(_validated(path, validate))


class _TabularFactory(metaclass=_pipesched.Explaining):
    @staticmethod
    def from_delimited_files(
        path: Any,
        validate: bool = True,
        include_path: bool = False,
        infer_column_types: bool = True,
        set_column_types: Any = None,
        separator: str = ",",
        header: Any = True,
        partition_format: str | None = None,
        support_multi_line: bool = False,
        empty_as_string: bool = False,
        encoding: str = "utf8",
    ) -> TabularDataset:
        header_row = header not in (False, 0, "no_headers", "NO_HEADERS")
        return TabularDataset(
            _validated(path, validate), "delimited", separator, header_row, include_path
        )

    @staticmethod
    def from_parquet_files(
        path: Any,
        validate: bool = True,
        include_path: bool = False,
        set_column_types: Any = None,
        partition_format: str | None = None,
    ) -> TabularDataset:
        return TabularDataset(_validated(path, validate), "parquet", include_path=include_path)


def _validated(path: Any, validate: bool) -> list[str]:
    paths = _resolve(path)
    if validate and not any(os.path.exists(p) for p in paths):
        raise UserErrorException(f"no files at {path!r} (looked in {', '.join(paths)})")
    return paths


class Dataset(metaclass=_pipesched.Explaining):
    """Azure ML's entry point: ``Dataset.File.from_files(...)``,
    ``Dataset.Tabular.from_delimited_files(...)``."""

    File = _FileFactory
    Tabular = _TabularFactory
