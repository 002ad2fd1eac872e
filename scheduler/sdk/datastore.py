"""Azure ML's ``Datastore``: here a named folder from the daemon config's ``datastores``.

``upload``, ``upload_files`` and ``download`` move files in and out of it with Azure's arguments,
progress lines and return values: within this machine for an embedded workspace, over the
daemon's ``/api/v1/datastores/{name}/files/`` paths for a remote one (the backend's
``*_datastore_*`` methods). Either way every path stays inside the datastore
(``scheduler.services.datastores``)."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scheduler.core.pathnames import escape_name
from scheduler.sdk._warn import SdkError, refused
from scheduler.sdk.datapath import DataPath, DataReference, resolve_path
from scheduler.services.datastores import files_under, path_parts

if TYPE_CHECKING:
    from scheduler.sdk.workspace import Workspace


class Datastore:
    """A datastore of the workspace, by name. ``local_path`` is its folder when the workspace is
    embedded (None through a remote daemon, whose folders live on its machine); ``path(...)``
    is Azure's method that makes a DataReference."""

    def __init__(self, workspace: Workspace, name: str | None = None) -> None:
        self.workspace = workspace
        self.name = name or "default"
        self.datastore_type = "local"

    @property
    def local_path(self) -> Path | None:
        return self.workspace._datastore_path(self.name)

    def path(
        self,
        path: str | None = None,
        data_reference_name: str | None = None,
        path_on_compute: str | None = None,
        mode: str = "mount",
        overwrite: bool = False,
    ) -> DataReference:
        """Azure's ``datastore.path("folder")``: a reference to a folder of this datastore."""
        return DataReference(
            self,
            data_reference_name=data_reference_name,
            path_on_datastore=path,
            mode=mode,
            path_on_compute=path_on_compute,
            overwrite=overwrite,
        )

    @staticmethod
    def get(workspace: Workspace, datastore_name: str) -> Datastore:
        return workspace.datastores[datastore_name]

    @staticmethod
    def get_default(workspace: Workspace) -> Datastore:
        return workspace.get_default_datastore()

    def as_mount(self) -> Datastore:
        return self

    def as_download(self, path_on_compute: str | None = None) -> Datastore:
        return self

    def make_path(self, path: str) -> DataPath:
        return DataPath(self, path)

    def uri(self, path: str = "") -> str:
        """``datastore://NAME/path``, the canonical form of a path parameter."""
        return f"datastore://{self.name}/{path.lstrip('/')}"

    def __repr__(self) -> str:
        return f"Datastore(name={self.name!r})"

    # -- moving files -------------------------------------------------------------------------

    def upload(
        self,
        src_dir: str | os.PathLike[str],
        target_path: str | None = None,
        overwrite: bool = False,
        show_progress: bool = True,
    ) -> DataReference:
        """Copy the files under the local folder ``src_dir`` to ``target_path`` (default: the
        datastore's root), keeping their layout. Files that are there already are skipped
        unless ``overwrite``. Returns a DataReference to ``target_path``, as Azure does."""
        self._upload_tree(src_dir, target_path, None, overwrite, show_progress)
        return DataReference(self, path_on_datastore=target_path or "")

    def upload_files(
        self,
        files: Iterable[str | os.PathLike[str]],
        relative_root: str | os.PathLike[str] | None = None,
        target_path: str | None = None,
        overwrite: bool = False,
        show_progress: bool = True,
    ) -> DataReference:
        """Copy local ``files`` to ``target_path``, each at its path from ``relative_root``
        (default: the folder all of them are in). Returns a DataReference to ``target_path``."""
        paths = [resolve_path(file) for file in files]
        if relative_root is not None:
            root = resolve_path(relative_root)
        elif paths:
            root = Path(os.path.commonpath([path.parent for path in paths]))
        else:
            root = Path.cwd()
        plan = []
        for path in paths:
            if not path.is_relative_to(root):
                raise SdkError(f"relative_root: '{root}' is not part of the file_path: '{path}'")
            if not path.is_file():
                raise SdkError(f"'{escape_name(str(path))}' does not point to a file")
            plan.append((path, _joined(target_path, path.relative_to(root).as_posix())))
        self._put_all(plan, overwrite, show_progress)
        return DataReference(self, path_on_datastore=target_path or "")

    def download(
        self,
        target_path: str | os.PathLike[str],
        prefix: str | None = None,
        overwrite: bool = False,
        show_progress: bool = True,
    ) -> int:
        """Copy the datastore's files whose path starts with ``prefix`` (all when None, but
        ``.pipesched/``) into the local folder ``target_path``, each at its path from the
        datastore's root. Local files that exist are skipped unless ``overwrite``. Returns the
        number of files copied, as Azure does."""
        backend = self.workspace._backend
        target = resolve_path(target_path)
        target.mkdir(parents=True, exist_ok=True)
        wanted = list(files_under(lambda f: backend.list_datastore_folder(self.name, f), prefix))
        say = _progress(show_progress)
        total, count = len(wanted), 0
        for path, _ in wanted:
            local = target / path
            if not overwrite and (local.exists() or local.is_symlink()):
                total -= 1
                say(f"Path already exists. Skipping download for {escape_name(str(local))}")
                continue
            say(f"Downloading {escape_name(path)}")
            backend.get_datastore_file(self.name, path, local)
            count += 1
            say(
                f"Downloaded {escape_name(path)}, {count} files out of an estimated total of {total}"
            )
        return count

    def _upload_tree(
        self,
        src_dir: str | os.PathLike[str],
        target_path: str | None,
        pattern: str | None,
        overwrite: bool,
        show_progress: bool,
    ) -> int:
        """Upload the files under ``src_dir`` (those whose path, joined to ``src_dir`` as given,
        matches ``pattern`` when there is one) to ``target_path``; the number uploaded."""
        source = resolve_path(src_dir)
        if not source.is_dir():
            raise SdkError(f"src_dir must be a directory: '{escape_name(str(source))}'")
        plan = [
            (path, _joined(target_path, relative))
            for path, relative in _local_files(source)
            if pattern is None or fnmatch.fnmatch(os.path.join(src_dir, relative), pattern)
        ]
        return self._put_all(plan, overwrite, show_progress)

    def _put_all(self, plan: list[tuple[Path, str]], overwrite: bool, show_progress: bool) -> int:
        """Upload each (local file, datastore path) in turn, with Azure's progress lines; every
        path is checked before the first file goes. The number uploaded."""
        for _, path in plan:
            path_parts(path)
        backend = self.workspace._backend
        say = _progress(show_progress)
        total, count = len(plan), 0
        say(f"Uploading an estimated of {total} files")
        for local, path in plan:
            shown = escape_name(str(local))
            say(f"Uploading {shown}")
            if backend.put_datastore_file(self.name, path, local, overwrite=overwrite):
                count += 1
                say(f"Uploaded {shown}, {count} files out of an estimated total of {total}")
            else:
                total -= 1
                say(f"Target already exists. Skipping upload for {escape_name(path)}")
        say(f"Uploaded {count} files")
        return count

    # Registering storage accounts is Azure's business: folders are configured in pipesched.yaml.
    @staticmethod
    def register_azure_blob_container(*args: Any, **kwargs: Any) -> Datastore:
        raise _register_refused("register_azure_blob_container")

    @staticmethod
    def register_azure_file_share(*args: Any, **kwargs: Any) -> Datastore:
        raise _register_refused("register_azure_file_share")

    @staticmethod
    def register_azure_data_lake_gen2(*args: Any, **kwargs: Any) -> Datastore:
        raise _register_refused("register_azure_data_lake_gen2")


def _joined(target_path: str | None, relative: str) -> str:
    """``relative`` under ``target_path``, a path from the datastore's root (a leading ``/`` or
    ``./`` means that root, as on Azure; ``..`` is refused when the path is checked)."""
    folder = target_path or ""
    while folder.startswith(("/", "./")):
        folder = folder[1:] if folder.startswith("/") else folder[2:]
    return f"{folder.rstrip('/')}/{relative}" if folder.strip("/") else relative


def _local_files(source: Path) -> Iterator[tuple[Path, str]]:
    """(file, path from ``source``, ``/``-separated) of every file under ``source``, sorted.
    Links to files are read through; linked folders are not entered (as os.walk, as Azure).
    Anything that is not a file is refused, before anything is uploaded."""
    found = []
    for folder, dirnames, filenames in os.walk(source):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(folder, name)
            if not path.is_file():
                raise SdkError(f"'{escape_name(str(path))}' does not point to a file")
            found.append((path, path.relative_to(source).as_posix()))
    return iter(found)


def _progress(show: bool) -> Callable[[str], None]:
    """Azure's console lines while files move, when ``show_progress``."""

    def say(line: str) -> None:
        if show:
            print(line, flush=True)

    return say


def _register_refused(method: str) -> SdkError:
    """The refusal of one of Azure's ``register_*`` methods, naming that method."""
    return refused(
        "Datastore",
        method,
        "datastores are local or shared folders declared in pipesched.yaml",
        hint="add  datastores: {NAME: {path: /some/folder}}  to the config",
    )
