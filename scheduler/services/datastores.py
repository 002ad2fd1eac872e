"""Files in and out of a datastore, for the SDK's ``Datastore.upload``/``download`` on this machine
and for the daemon's ``/api/v1/datastores/{name}/files/...`` paths.

Confinement: a path is given from the datastore's root, ``/``-separated. An absolute path, a
``..`` part and a NUL byte are refused outright; then the path's *real* path must lie inside the
datastore (a symlink that stays inside is fine, one that leads out is refused). Once checked,
the folders are opened one by one from the datastore's root without following links
(``O_NOFOLLOW``, ``dir_fd``), so a folder swapped for a link between the check and the write is
refused instead of followed. Names are ``os.fsdecode`` text: every byte a POSIX name can hold
(outside this module, on the wire and in JSON, they are escaped text:
``scheduler.core.pathnames``).

Writing: a new file is streamed to a hidden temporary file beside its target (created 0600,
folders made for it 0700, whatever the umask), then renamed over it (``overwrite``) or linked
into place, which fails if a file appeared meanwhile. A reader never sees half a file, and an
upload that fails or is refused leaves nothing behind: the temporary file goes, and so do the
folders made for it. The datastore's own ``.pipesched/`` folder (run outputs, registered
models) can be read, never written.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from scheduler.core.errors import NotFound, PipeschedError
from scheduler.core.pathnames import escape_name, unescape_name

if TYPE_CHECKING:
    from scheduler.definitions.config import Config

INTERNAL_DIR = ".pipesched"
TEMP_PREFIX = ".pipesched-upload-"
TEMP_SUFFIX = ".tmp"  # matched by file-drop schedules' default ignore_patterns
CHUNK = 1024 * 1024
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
NAME_MAX = 255  # bytes in one file name, on Linux's filesystems


class BadDatastorePath(PipeschedError):
    """The path cannot name a file of the datastore (it leads out, or is not a path)."""


class DatastoreConflict(PipeschedError):
    """What is at the path forbids it (a folder where a file is asked, a file that exists)."""


class DatastoreFileExists(DatastoreConflict):
    """A file is already there, and it may not be replaced."""


class DatastoreUploadTooLarge(PipeschedError):
    """The file is larger than an upload may be."""


@dataclass(frozen=True)
class DatastoreEntry:
    """One entry of a datastore folder: a file (with its size) or a folder. ``name`` is the
    ``os.fsdecode`` text of the name; ``to_json`` escapes it."""

    name: str
    kind: Literal["file", "folder"]
    size: int | None = None
    modified: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": escape_name(self.name),
            "type": self.kind,
            "size": self.size,
            "modified": self.modified,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DatastoreEntry:
        """An entry from a daemon's listing; a name that could step out of a folder is
        refused (a download writes it under the caller's folder)."""
        name = unescape_name(str(data["name"]))
        if name in ("", ".", "..") or "/" in name or "\0" in name:
            raise BadDatastorePath(f"the daemon listed an entry named {data['name']!r}")
        kind = data.get("type")
        if kind not in ("file", "folder"):
            raise BadDatastorePath(f"the daemon listed {data['name']!r} as a {kind!r}")
        return cls(name, kind, data.get("size"), data.get("modified"))


# -- paths ----------------------------------------------------------------------------------------


def datastore_root(config: Config, name: str) -> Path:
    """The real path of datastore ``name``'s folder (it may not exist yet)."""
    store = config.datastores.get(name)
    if store is None:
        raise NotFound(
            f"no datastore {name!r}", hint=f"datastores: {', '.join(sorted(config.datastores))}"
        )
    return Path(os.path.realpath(store.path))


def path_parts(path: str) -> tuple[str, ...]:
    """The names of a path from a datastore's root (``a/b.csv`` → ``("a", "b.csv")``; empty
    and ``.`` parts dropped). Refused: an absolute path, ``..``, a NUL byte."""
    if "\0" in path:
        raise BadDatastorePath(f"{escape_name(path)!r}: a file name cannot hold a NUL byte")
    if path.startswith("/"):
        raise BadDatastorePath(
            f"{escape_name(path)!r} is an absolute path",
            hint="give the path from the datastore's root, e.g. 'data/train.csv'",
        )
    parts = tuple(part for part in path.split("/") if part not in ("", "."))
    if ".." in parts:
        raise BadDatastorePath(
            f"{escape_name(path)!r} leads out of its folder through '..'",
            hint="give the path from the datastore's root, without '..'",
        )
    if any(len(os.fsencode(part)) > NAME_MAX for part in parts):
        raise BadDatastorePath(f"{escape_name(path)!r}: a name in it is over {NAME_MAX} bytes")
    return parts


def _real_parts(root: Path, parts: tuple[str, ...], shown: str, datastore: str) -> tuple[str, ...]:
    """The parts of the real path of ``root/parts``, which must lie inside ``root``."""
    try:
        real = Path(os.path.realpath(os.path.join(root, *parts)))
    except OSError as exc:
        raise _os_refusal(exc, shown) from exc
    if real != root and not real.is_relative_to(root):
        raise BadDatastorePath(
            f"{shown!r} leads outside datastore '{datastore}' through a symlink",
            hint="symlinks inside a datastore may point only inside it",
        )
    return real.relative_to(root).parts


def _os_refusal(exc: OSError, shown: str) -> PipeschedError:
    if exc.errno == errno.ENAMETOOLONG:
        return BadDatastorePath(f"{shown!r}: a name in it is longer than the filesystem allows")
    if exc.errno in (errno.ELOOP, errno.EMLINK):
        return BadDatastorePath(f"{shown!r} changed into a symlink while it was opened")
    if exc.errno == errno.ENOTDIR:
        return DatastoreConflict(f"{shown!r}: a part of it is a file, not a folder")
    if exc.errno == errno.ENOENT:
        return NotFound(f"{shown!r} does not exist")
    return PipeschedError(f"cannot write or read {shown!r}: {exc.strerror or exc}")


@contextlib.contextmanager
def _opened_root(root: Path, *, create: bool) -> Iterator[int]:
    if create and not root.is_dir():
        _make_private_dirs(root)
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise NotFound(f"the datastore's folder {root} does not exist yet") from exc
    except OSError as exc:
        raise _os_refusal(exc, str(root)) from exc
    try:
        yield fd
    finally:
        os.close(fd)


def _make_private_dirs(path: Path) -> None:
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=PRIVATE_DIR)
            os.chmod(folder, PRIVATE_DIR)


def _open_folders(
    root_fd: int, parts: Iterable[str], shown: str, created: list[tuple[int, str]] | None
) -> int:
    """A descriptor of the folder ``parts`` under ``root_fd``, opened without following links;
    missing folders are made (0700) when ``created`` is given, and listed in it as (parent fd,
    name) so a failed write can take them away again. The caller closes the descriptor; the
    parents' descriptors are kept open in ``created``'s entries until then."""
    fd = os.dup(root_fd)
    try:
        for part in parts:
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if created is None:
                    raise
                os.mkdir(part, PRIVATE_DIR, dir_fd=fd)
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.fchmod(child, PRIVATE_DIR)  # mkdir's mode is masked by the umask
                created.append((os.dup(fd), part))
            os.close(fd)
            fd = child
    except OSError as exc:
        os.close(fd)
        raise _os_refusal(exc, shown) from exc
    return fd


# -- writing --------------------------------------------------------------------------------------


class NewFile:
    """A file being written into a datastore: ``write`` chunks, then ``commit`` (or ``abort``).
    Made by ``new_file``, which has already refused what cannot be written."""

    def __init__(self, folder_fd: int, name: str, shown: str, overwrite: bool, limit: int | None):
        self._folder_fd = folder_fd
        self.name = name
        self.shown = shown
        self.overwrite = overwrite
        self.limit = limit
        self.size = 0
        self._created: list[tuple[int, str]] = []
        self._temp = f"{TEMP_PREFIX}{os.urandom(8).hex()}{TEMP_SUFFIX}"
        self._fd: int | None = os.open(
            self._temp,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            PRIVATE_FILE,
            dir_fd=folder_fd,
        )
        os.fchmod(self._fd, PRIVATE_FILE)

    def write(self, data: bytes) -> None:
        assert self._fd is not None, "the file is closed"
        self.size += len(data)
        if self.limit is not None and self.size > self.limit:
            raise DatastoreUploadTooLarge(f"the upload is larger than {self.limit} bytes")
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:  # a full disk, a quota
            raise _os_refusal(exc, self.shown) from exc

    def commit(self) -> bool:
        """Put the file in place; True when it replaced one. A file that appeared meanwhile
        and may not be replaced is a ``DatastoreFileExists``; nothing is left behind then."""
        assert self._fd is not None, "the file is closed"
        try:
            os.close(self._fd)
            self._fd = None
            replaced = _exists(self._folder_fd, self.name, self.shown)
            if self.overwrite:
                os.replace(
                    self._temp, self.name, src_dir_fd=self._folder_fd, dst_dir_fd=self._folder_fd
                )
            else:
                self._link_new()
        except OSError as exc:
            self.abort()
            raise _os_refusal(exc, self.shown) from exc
        except BaseException:
            self.abort()
            raise
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._temp, dir_fd=self._folder_fd)
        self._close()
        return replaced

    def _link_new(self) -> None:
        """Link the temporary file under its name: atomic, and refused if the name is taken."""
        try:
            os.link(
                self._temp,
                self.name,
                src_dir_fd=self._folder_fd,
                dst_dir_fd=self._folder_fd,
                follow_symlinks=False,
            )
        except FileExistsError as exc:
            raise _exists_error(self.shown) from exc
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
                raise
            # A filesystem without hard links: check, then rename (a racing writer may win).
            if _exists(self._folder_fd, self.name, self.shown):
                raise _exists_error(self.shown) from exc
            os.rename(self._temp, self.name, src_dir_fd=self._folder_fd, dst_dir_fd=self._folder_fd)

    def abort(self) -> None:
        """Remove the temporary file and the folders made for it (when still empty)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        with contextlib.suppress(OSError):
            os.unlink(self._temp, dir_fd=self._folder_fd)
        self._close()

    def _close(self) -> None:
        if self._folder_fd < 0:
            return
        os.close(self._folder_fd)
        self._folder_fd = -1
        for parent_fd, name in reversed(self._created):
            with contextlib.suppress(OSError):  # not empty: another upload put a file there
                os.rmdir(name, dir_fd=parent_fd)
            os.close(parent_fd)
        self._created.clear()

    def __enter__(self) -> NewFile:
        return self

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        if self._folder_fd >= 0:
            self.abort()


def new_file(
    config: Config, datastore: str, path: str, *, overwrite: bool, limit: int | None = None
) -> NewFile:
    """Start writing ``path`` (from the datastore's root) in ``datastore``. Refused before a
    byte is written: a path that leads out, one under ``.pipesched/``, a folder there, and a
    file there unless ``overwrite``. ``limit``: the most bytes the file may have."""
    shown = escape_name(path)
    parts = path_parts(path)
    if not parts:
        raise BadDatastorePath("give the path of a file, not the datastore's root")
    root = datastore_root(config, datastore)
    real = _real_parts(root, parts, shown, datastore)
    if not real:
        raise DatastoreConflict(f"{shown!r} is the datastore's folder, not a file")
    if real[0] == INTERNAL_DIR:
        raise BadDatastorePath(
            f"{shown!r} is in '{INTERNAL_DIR}/', pipesched's own folder of the datastore "
            "(run outputs, registered models): it is read-only",
            hint="upload somewhere else in the datastore",
        )
    created: list[tuple[int, str]] = []
    try:
        with _opened_root(root, create=True) as root_fd:
            folder_fd = _open_folders(root_fd, real[:-1], shown, created)
    except OSError as exc:  # the datastore's folder cannot be made
        raise _os_refusal(exc, shown) from exc
    try:
        if not overwrite and _exists(folder_fd, real[-1], shown):
            raise _exists_error(shown)
        try:
            writer = NewFile(folder_fd, real[-1], shown, overwrite, limit)
        except OSError as exc:
            raise _os_refusal(exc, shown) from exc
    except BaseException:
        os.close(folder_fd)
        for parent_fd, name in reversed(created):
            with contextlib.suppress(OSError):
                os.rmdir(name, dir_fd=parent_fd)
            os.close(parent_fd)
        raise
    writer._created = created
    return writer


def _exists(folder_fd: int, name: str, shown: str) -> bool:
    """True when a file is at ``name``; a folder there is a ``DatastoreConflict``."""
    try:
        info = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(info.st_mode):
        raise DatastoreConflict(f"{shown!r} is a folder", hint="give the path of a file in it")
    return True


def _exists_error(shown: str) -> DatastoreFileExists:
    return DatastoreFileExists(
        f"{shown!r} exists in the datastore", hint="pass overwrite=true to replace it"
    )


def copy_into(config: Config, datastore: str, path: str, source: Path, *, overwrite: bool) -> bool:
    """Copy the local file ``source`` to ``path`` in ``datastore``; False (and nothing
    written) when a file is there and ``overwrite`` is False."""
    try:
        with (
            open(source, "rb") as handle,
            new_file(config, datastore, path, overwrite=overwrite) as writer,
        ):
            while chunk := handle.read(CHUNK):
                writer.write(chunk)
            writer.commit()
    except DatastoreFileExists:
        return False
    return True


# -- reading --------------------------------------------------------------------------------------


def open_file(config: Config, datastore: str, path: str) -> BinaryIO:
    """The datastore file ``path``, open for reading (a regular file, reached only through
    links that stay inside the datastore)."""
    shown = escape_name(path)
    parts = path_parts(path)
    root = datastore_root(config, datastore)
    real = _real_parts(root, parts, shown, datastore)
    if not real:
        raise DatastoreConflict(f"{shown!r} is a folder", hint="add '/' to list it")
    with _opened_root(root, create=False) as root_fd:
        folder_fd = _open_folders(root_fd, real[:-1], shown, None)
    try:
        fd = os.open(real[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder_fd)
    except OSError as exc:
        raise _os_refusal(exc, shown) from exc
    finally:
        os.close(folder_fd)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        if stat.S_ISDIR(info.st_mode):
            raise DatastoreConflict(f"{shown!r} is a folder", hint="add '/' to list it")
        raise DatastoreConflict(f"{shown!r} is not a regular file")
    return os.fdopen(fd, "rb")


def list_folder(config: Config, datastore: str, path: str) -> list[DatastoreEntry]:
    """The files and folders in the datastore folder ``path`` ("" for the root), by name.
    Links to files inside the datastore count as files; links to folders are not listed (a
    download never descends into them: a link may loop), nor links that lead out, nor other
    kinds of files, nor uploads in flight. The root of a datastore not made yet is empty."""
    shown = escape_name(path)
    parts = path_parts(path)
    root = datastore_root(config, datastore)
    real = _real_parts(root, parts, shown, datastore)
    if not real and not root.exists():
        return []
    with _opened_root(root, create=False) as root_fd:
        folder_fd = _open_folders(root_fd, real, shown, None)
    try:
        entries = list(_entries(folder_fd, root / Path(*real), root))
    except OSError as exc:
        raise _os_refusal(exc, shown) from exc
    finally:
        os.close(folder_fd)
    return sorted(entries, key=lambda entry: entry.name)


def _entries(folder_fd: int, folder: Path, root: Path) -> Iterator[DatastoreEntry]:
    with os.scandir(folder_fd) as scan:
        for item in scan:
            name = item.name
            if name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX):
                continue
            try:
                if item.is_symlink():
                    target = Path(os.path.realpath(folder / name))
                    if not target.is_relative_to(root) or not target.is_file():
                        continue
                    info = target.stat()
                else:
                    info = item.stat(follow_symlinks=False)
            except OSError:  # gone meanwhile
                continue
            if stat.S_ISDIR(info.st_mode) and not item.is_symlink():
                yield DatastoreEntry(name, "folder", None, info.st_mtime)
            elif stat.S_ISREG(info.st_mode):
                yield DatastoreEntry(name, "file", info.st_size, info.st_mtime)


def files_under(
    list_folder: Callable[[str], list[DatastoreEntry]], prefix: str | None
) -> Iterator[tuple[str, DatastoreEntry]]:
    """(path from the datastore's root, entry) of every file a download of ``prefix`` takes,
    as Azure's blob download matches names: every path that starts with ``prefix``. So
    ``data/train`` takes ``data/train.csv`` and everything under ``data/train/`` and
    ``data/train2/``; ``data/`` takes the folder ``data``; None or "" the whole datastore but
    its ``.pipesched/`` folder. ``list_folder`` lists one folder (as ``list_folder`` above, or a
    daemon's listing); a folder that does not exist takes nothing."""
    prefix = (prefix or "").lstrip("/")
    folder, _, start = prefix.rpartition("/")
    parts = path_parts(folder)
    pending = [(parts, start)]
    while pending:
        parts, start = pending.pop()
        try:
            entries = list_folder("/".join(parts) + "/" if parts else "")
        except NotFound:
            continue
        subfolders = []
        for entry in entries:
            if not entry.name.startswith(start):
                continue
            if not parts and not prefix and entry.name == INTERNAL_DIR:
                continue
            if entry.kind == "folder":
                subfolders.append(((*parts, entry.name), ""))
            else:
                yield "/".join((*parts, entry.name)), entry
        pending.extend(reversed(subfolders))


# -- local files ----------------------------------------------------------------------------------


def write_local(target: Path, chunks: Iterable[bytes]) -> None:
    """Write ``chunks`` to the local file ``target`` through a temporary file beside it,
    renamed over it at the end: an interrupted download leaves the old file or none."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f"{TEMP_PREFIX}{os.urandom(8).hex()}{TEMP_SUFFIX}")
    try:
        with open(temp, "xb") as out:
            for chunk in chunks:
                out.write(chunk)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
