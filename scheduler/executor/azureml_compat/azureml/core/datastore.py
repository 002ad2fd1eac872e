"""``Datastore`` in a step: a named folder of pipesched's config. ``upload`` and ``download``
copy files on this machine, confined to the datastore's folder."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NoReturn

from .. import _pipesched
from ..exceptions import UserErrorException

if TYPE_CHECKING:
    from .workspace import Workspace


class DataReference(metaclass=_pipesched.Explaining):
    """A path in a datastore: what ``datastore.path(...)`` and ``upload`` return."""

    def __init__(
        self,
        datastore: Datastore,
        data_reference_name: str | None = None,
        path_on_datastore: str | None = None,
        mode: str = "mount",
        path_on_compute: str | None = None,
        overwrite: bool = False,
    ) -> None:
        self.datastore = datastore
        self.data_reference_name = data_reference_name or datastore.name
        self.path_on_datastore = path_on_datastore
        self.mode = mode
        self.path_on_compute = path_on_compute
        self.overwrite = overwrite

    @property
    def local_path(self) -> str:
        """The folder or file on this machine (pipesched's addition)."""
        return self.datastore._resolve(self.path_on_datastore or "")

    def as_mount(self) -> DataReference:
        return self

    def as_download(
        self, path_on_compute: str | None = None, overwrite: bool = False
    ) -> DataReference:
        return self

    def __str__(self) -> str:
        """The path itself: what Azure ML substitutes for a data reference on the compute."""
        return self.local_path

    def __fspath__(self) -> str:
        return self.local_path

    def __repr__(self) -> str:
        return (
            f"DataReference(datastore={self.datastore.name!r}, "
            f"path_on_datastore={self.path_on_datastore!r})"
        )

    def __getattr__(self, name: str) -> NoReturn:
        raise _pipesched.attribute_error(type(self).__name__, name)


class Datastore(metaclass=_pipesched.Explaining):
    """A datastore by name; ``Datastore(ws)`` is the default one."""

    datastore_type = "local"

    def __init__(self, workspace: Workspace | None = None, name: str | None = None) -> None:
        self.workspace = workspace
        self.name = name or _pipesched.DEFAULT_DATASTORE
        folders = _pipesched.datastore_folders()
        if self.name not in folders:
            known = ", ".join(sorted(folders)) or "none: not inside a pipesched step"
            raise UserErrorException(f"no datastore named {self.name!r} (datastores: {known})")
        self._folder = folders[self.name]

    @staticmethod
    def get(workspace: Workspace | None, datastore_name: str) -> Datastore:
        return Datastore(workspace, datastore_name)

    @staticmethod
    def get_default(workspace: Workspace | None) -> Datastore:
        return Datastore(workspace)

    def path(
        self,
        path: str | None = None,
        data_reference_name: str | None = None,
        path_on_compute: str | None = None,
        mode: str = "mount",
        overwrite: bool = False,
    ) -> DataReference:
        return DataReference(
            self,
            data_reference_name=data_reference_name,
            path_on_datastore=path,
            mode=mode,
            path_on_compute=path_on_compute,
            overwrite=overwrite,
        )

    def as_mount(self) -> DataReference:
        return self.path()

    def as_download(self, path_on_compute: str | None = None) -> DataReference:
        return self.path(path_on_compute=path_on_compute, mode="download")

    # -- data movement, Azure's arguments ---------------------------------------------------------

    def upload(
        self,
        src_dir: str,
        target_path: str | None = None,
        overwrite: bool = False,
        show_progress: bool = True,
    ) -> DataReference:
        """Copy the files under ``src_dir`` to ``target_path`` in the datastore; existing files
        are kept unless ``overwrite``."""
        files = _pipesched.files_under(src_dir)
        return self.upload_files(files, os.path.abspath(src_dir), target_path, overwrite)

    def upload_files(
        self,
        files: Iterable[str],
        relative_root: str | None = None,
        target_path: str | None = None,
        overwrite: bool = False,
        show_progress: bool = True,
    ) -> DataReference:
        """Copy ``files`` to ``target_path``, each at its path relative to ``relative_root``
        (by its name alone without one)."""
        target = target_path or ""
        for file in files:
            name = (
                os.path.relpath(os.path.abspath(file), os.path.abspath(relative_root))
                if relative_root
                else os.path.basename(file)
            )
            destination = self._resolve(os.path.join(target, name))
            copied = _pipesched.copy_file(file, destination, overwrite)
            if show_progress:
                done = "uploaded" if copied else "exists, kept"
                print(f"[pipesched] {file} -> {self.name}/{target}/{name}: {done}", flush=True)
        return self.path(target_path)

    def download(
        self,
        target_path: str,
        prefix: str | None = None,
        overwrite: bool = False,
        show_progress: bool = True,
    ) -> int:
        """Copy the files whose path in the datastore starts with ``prefix`` to the same path
        under ``target_path``. The number of files copied, as in Azure ML."""
        root = self._resolve("")
        wanted = (prefix or "").lstrip("/")
        count = 0
        for file in _pipesched.files_under(root):
            relative = os.path.relpath(file, root).replace(os.sep, "/")
            if relative.startswith(".pipesched/") or not relative.startswith(wanted):
                continue
            if _pipesched.copy_file(file, os.path.join(target_path, relative), overwrite):
                count += 1
        if show_progress:
            print(f"[pipesched] downloaded {count} files from {self.name}", flush=True)
        return count

    def _resolve(self, relative: str) -> str:
        return _pipesched.confined(self._folder, relative)

    def __repr__(self) -> str:
        return f"Datastore(name={self.name!r})"

    def __getattr__(self, name: str) -> Any:
        raise _pipesched.attribute_error(type(self).__name__, name)
