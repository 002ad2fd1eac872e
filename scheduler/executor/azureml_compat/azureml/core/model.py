"""``Model`` in a step: registered models found by folder, without the store.

Version N of model M is the folder ``<models dir>/M/N/``, holding what was registered: one
file or one folder, under its own name. ``Model.get_model_path`` returns that file or folder,
as Azure ML does; when the version folder holds anything else, the version folder itself.
Names starting with a dot are not models (a registry may keep its notes there, or copy into
a hidden folder and rename it into place)."""

from __future__ import annotations

import os
import shutil
from typing import Any, NoReturn

from scheduler.runtime import Model as _RuntimeModel

from .. import _pipesched
from ..exceptions import ModelNotFoundException, WebserviceException


def _versions(folder: str) -> list[int]:
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(int(n) for n in names if n.isdigit() and os.path.isdir(os.path.join(folder, n)))


def _content(version_folder: str) -> str:
    entries = [n for n in sorted(os.listdir(version_folder)) if not n.startswith(".")]
    return os.path.join(version_folder, entries[0]) if len(entries) == 1 else version_folder


def _find(model_name: str, version: int | None) -> tuple[int, str] | None:
    """(version, path) of a model in the models folder, the latest when ``version`` is None."""
    folder = _pipesched.confined(_pipesched.models_dir(), model_name)
    versions = _versions(folder)
    chosen = versions[-1] if version is None and versions else version
    if chosen is None or chosen not in versions:
        return None
    return chosen, _content(os.path.join(folder, str(chosen)))


def _check_version(version: Any) -> int | None:
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        raise WebserviceException("version should be an int")
    return version


def _not_found(model_name: str, version: int | None) -> ModelNotFoundException:
    folder = os.path.join(_pipesched.models_dir(), model_name)
    which = f"version {version} of model" if version is not None else "model"
    known = _versions(folder)
    return ModelNotFoundException(
        f"{which} {model_name!r} not found in {folder} "
        f"(versions there: {', '.join(map(str, known)) or 'none'}; "
        f"`pipesched models` lists the registered models)"
    )


class Model(metaclass=_pipesched.Explaining):
    """A registered model, by name and version (the latest without one)."""

    @staticmethod
    def register(
        workspace: Any,
        model_path: str,
        model_name: str,
        tags: Any = None,
        properties: Any = None,
        description: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """Registers with the step's own run (``scheduler.runtime``), recorded with the step."""
        return _RuntimeModel.register(
            workspace,
            model_path,
            model_name,
            tags=tags,
            properties=properties,
            description=description,
            **kwargs,
        )

    def __init__(
        self,
        workspace: Any = None,
        name: str | None = None,
        id: str | None = None,
        tags: Any = None,
        properties: Any = None,
        version: int | None = None,
        run_id: str | None = None,
        model_framework: str | None = None,
        expand: bool = True,
        **kwargs: Any,
    ) -> None:
        if id is not None and name is None:
            name, _, number = id.partition(":")
            version = int(number) if number.isdigit() else version
        if not name:
            raise WebserviceException("Model needs a name (or an id NAME:VERSION)")
        found = _find(name, _check_version(version))
        if found is None:
            raise _not_found(name, version)
        self.workspace = workspace
        self.name = name
        self.version, self._path = found
        self.id = f"{name}:{self.version}"

    def download(
        self, target_dir: str = ".", exist_ok: bool = False, exists_ok: bool | None = None
    ) -> str:
        """Copy the model's file or folder into ``target_dir``; the copy's path."""
        if exists_ok is not None:
            exist_ok = exists_ok
        target = os.path.join(target_dir, os.path.basename(self._path))
        if os.path.exists(target) and not exist_ok:
            raise WebserviceException(
                f"File already exists. To overwrite, set exist_ok to True. {target}"
            )
        os.makedirs(target_dir, exist_ok=True)
        if os.path.isdir(self._path):
            shutil.copytree(self._path, target, dirs_exist_ok=True)
        else:
            shutil.copyfile(self._path, target)
        return target

    @staticmethod
    def get_model_path(model_name: str, version: int | None = None, _workspace: Any = None) -> str:
        """The path of a registered model's file or folder: the latest version without one.
        Outside a pipeline step, as Azure ML looks locally: ``./azureml-models/NAME/VERSION/``,
        then ``./NAME``."""
        version = _check_version(version)
        if model_name is None:
            raise WebserviceException("model_name is None")
        found = _find(model_name, version)
        if found is not None:
            return found[1]
        if version is None and os.path.exists(model_name):
            return model_name
        raise _not_found(model_name, version)

    def __repr__(self) -> str:
        return f"Model(workspace={self.workspace!r}, name={self.name}, id={self.id})"

    def __getattr__(self, name: str) -> NoReturn:
        raise _pipesched.attribute_error("Model", name)
