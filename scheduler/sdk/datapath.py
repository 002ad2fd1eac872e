"""Datastore references on pipesched: Azure ML SDK v1's DataPath, DataPathComputeBinding and
DataReference, the DatastoreFolder they share with file datasets, and the helpers every SDK
object uses to record where it points and who made it.

Promises: a reference only records the datastore and path the notebook gave and the user's line
that made it (``caller_position``); ``path_default`` turns any DatastoreFolder into its
``datastore://NAME/path`` (a ``path`` parameter's default); a wrong datastore type is refused at
the user's line (``datastore_name``); Azure's compute bindings (mount, download,
path_on_compute) are accepted with a warning, since steps read the datastore's folder in place.
``resolve_path`` makes a user-given local directory absolute, as Azure resolves
``source_directory``.
Nothing here imports another module of ours but ``scheduler.sdk._warn``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from scheduler.sdk._warn import ignore_given, refused

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


# -- datastore folders -------------------------------------------------------------------------


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


# -- local directories -------------------------------------------------------------------------


def resolve_path(path: Any) -> Path:
    """An absolute path for a user-given directory (relative to the working directory, as
    Azure resolves ``source_directory``)."""
    return Path(os.path.normpath(os.path.abspath(os.fspath(path))))
