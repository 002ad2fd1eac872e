"""Azure ML's ``Model`` on pipesched: register a model file or folder as versions 1, 2, 3...,
find a version, list them, copy one out, and find a model's file inside a step.

Embedded, the services act on this machine's registry; through a daemon, files travel as tar
archives over its REST API (``/api/v1/models``). Deploying and packaging need Azure's serving
infrastructure and are refused with the way to serve a model yourself.
"""

from __future__ import annotations

import builtins
import io
import os
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, urlencode

from scheduler import runtime
from scheduler.core.errors import NotFound
from scheduler.sdk._warn import SdkError, ignore_given
from scheduler.sdk.remote import RemoteBackend, _sdk_errors

if TYPE_CHECKING:
    from scheduler.sdk.workspace import Workspace

_UNUSED = "pipesched keeps a model's files, tags, properties and description"
_SERVING = (
    "serving a model as a web service needs Azure ML's ACI, AKS or managed endpoints; "
    "load it in a scoring step with Model.get_model_path(name), or serve it with a web "
    "framework of your own"
)


class Model:
    """A registered model version: ``Model(ws, name)`` is the latest, ``Model(ws, name,
    version=2)`` or ``Model(ws, id="name:2")`` one version. ``name``, ``version``, ``id``,
    ``tags``, ``properties``, ``description``, ``run_id`` (the run that registered it, if one
    did), ``step`` and ``path`` (the registered file or folder) are read-only."""

    def __init__(
        self,
        workspace: Workspace,
        name: str | None = None,
        id: str | None = None,
        tags: Sequence[Any] | None = None,
        properties: Sequence[Any] | None = None,
        version: int | None = None,
        run_id: str | None = None,
        model_framework: str | None = None,
        expand: bool = True,
        **kwargs: Any,
    ) -> None:
        data = kwargs.pop("_data", None)
        ignore_given("Model", {"model_framework": model_framework}, {"model_framework": _UNUSED})
        if data is None:
            if id is not None:
                name, _, given = id.partition(":")
                version = int(given) if given.isdigit() else version
            if not name:
                raise SdkError("Model needs name= or id=", hint='e.g. Model(ws, "my-model")')
            data = _find(workspace, name, version, tags, properties, run_id)
        self.workspace = workspace
        self._data = data

    @classmethod
    def _from_json(cls, workspace: Workspace, data: dict[str, Any]) -> Model:
        return cls(workspace, _data=data)

    # -- attributes -------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return str(self._data["name"])

    @property
    def version(self) -> int:
        return int(self._data["version"])

    @property
    def id(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def tags(self) -> dict[str, Any]:
        return dict(self._data.get("tags") or {})

    @property
    def properties(self) -> dict[str, Any]:
        return dict(self._data.get("properties") or {})

    @property
    def description(self) -> str | None:
        return self._data.get("description")

    @property
    def run_id(self) -> str | None:
        return self._data.get("run_id")

    @property
    def step(self) -> str | None:
        """The step of ``run_id`` that registered it (pipesched's own)."""
        return self._data.get("step")

    @property
    def path(self) -> str:
        """Where the registered file or folder lives (on the daemon's machine when remote)."""
        return str(self._data["path"])

    @property
    def created_time(self) -> datetime:
        return datetime.fromisoformat(self._data["created_at"])

    @property
    def experiment_name(self) -> None:
        return None

    model_framework = None
    model_framework_version = None
    mime_type = "application/octet-stream"
    unpack = False

    def serialize(self) -> dict[str, Any]:
        """Azure's JSON keys for this model (``createdTime``, ``runId``...)."""
        return {
            "createdTime": self._data["created_at"],
            "description": self.description,
            "id": self.id,
            "name": self.name,
            "framework": None,
            "frameworkVersion": None,
            "tags": self.tags,
            "properties": self.properties,
            "unpack": False,
            "url": self.path,
            "version": self.version,
            "experimentName": None,
            "runId": self.run_id,
        }

    def __repr__(self) -> str:
        return (
            f"Model(workspace={self.workspace!r}, name={self.name}, id={self.id}, "
            f"version={self.version}, tags={self.tags}, properties={self.properties})"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Model) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    # -- registering, finding, copying out ----------------------------------------------------

    @staticmethod
    def register(
        workspace: Workspace,
        model_path: str | os.PathLike[str],
        model_name: str,
        tags: dict[str, Any] | None = None,
        properties: dict[str, Any] | None = None,
        description: str | None = None,
        datasets: Any = None,
        model_framework: str | None = None,
        model_framework_version: str | None = None,
        child_paths: list[str] | None = None,
        sample_input_dataset: Any = None,
        sample_output_dataset: Any = None,
        resource_configuration: Any = None,
    ) -> Model:
        """Register the file or folder at ``model_path`` as the next version of
        ``model_name`` (1 for a new name); the files are copied now."""
        ignore_given(
            "Model.register",
            {
                "datasets": datasets,
                "model_framework": model_framework,
                "model_framework_version": model_framework_version,
                "sample_input_dataset": sample_input_dataset,
                "sample_output_dataset": sample_output_dataset,
                "resource_configuration": resource_configuration,
            },
            dict.fromkeys(
                (
                    "datasets",
                    "model_framework",
                    "model_framework_version",
                    "sample_input_dataset",
                    "sample_output_dataset",
                    "resource_configuration",
                ),
                _UNUSED,
            ),
        )
        if child_paths:
            raise SdkError(
                "Model.register: child_paths is not supported on pipesched",
                hint="copy the files you want into one folder and register that folder",
            )
        _check_name(model_name)
        source = Path(model_path)
        if not source.exists():
            raise SdkError(f"model path {str(model_path)!r} cannot be found")
        print(f"Registering model {model_name}")
        data = _access(workspace).register(
            source, model_name, _dict("tags", tags), _dict("properties", properties), description
        )
        return Model._from_json(workspace, data)

    @staticmethod
    def list(
        workspace: Workspace,
        name: str | None = None,
        tags: Sequence[Any] | None = None,
        properties: Sequence[Any] | None = None,
        run_id: str | None = None,
        latest: bool = False,
        dataset_id: str | None = None,
        expand: bool = True,
        page_count: int = 255,
        model_framework: str | None = None,
    ) -> builtins.list[Model]:
        """Registered models by name, newest version first. ``tags`` and ``properties`` filter
        as Azure's do: ``["key", ["key2", "value"]]``; ``latest`` keeps each name's newest."""
        ignore_given(
            "Model.list",
            {"dataset_id": dataset_id, "model_framework": model_framework},
            {"dataset_id": "models record no datasets", "model_framework": _UNUSED},
        )
        found = _access(workspace).list(
            name, _filters("tags", tags), _filters("properties", properties), run_id, latest
        )
        return [Model._from_json(workspace, data) for data in found]

    def download(
        self, target_dir: str = ".", exist_ok: bool = False, exists_ok: bool | None = None
    ) -> str:
        """Copy this version's file or folder into ``target_dir``; the copy's path. An existing
        one is replaced only with ``exist_ok``."""
        if exists_ok is not None:
            exist_ok = exists_ok
        return _access(self.workspace).download(self.name, self.version, Path(target_dir), exist_ok)

    @staticmethod
    def get_model_path(
        model_name: str, version: int | None = None, _workspace: Workspace | None = None
    ) -> str:
        """The path of a registered model's file or folder, the latest version by default.
        Inside a pipeline step: from the registry's folder. Otherwise from ``_workspace`` (a
        daemon's model is downloaded to ``./azureml-models/<name>/<version>/`` first, as
        Azure does), else from that local folder or ``./<name>``."""
        if version is not None and (type(version) is not int or version < 1):
            raise SdkError(f"version should be an int from 1, not {version!r}")
        if os.environ.get(runtime.ENV_MODELS_DIR) or _workspace is None:
            try:
                return runtime.Model.get_model_path(model_name, version)
            except runtime.ModelNotFound as exc:
                raise NotFound(str(exc)) from None
        model = Model(_workspace, model_name, version=version)
        local = _access(_workspace).local_path(model)
        if local is not None:
            return local
        target = Path("azureml-models") / model.name / str(model.version)
        return model.download(str(target), exist_ok=True)

    # -- what only Azure's serving does -----------------------------------------------------------

    @staticmethod
    def deploy(*args: Any, **kwargs: Any) -> Any:
        raise SdkError("Model.deploy is not supported on pipesched", hint=_SERVING)

    @staticmethod
    def package(*args: Any, **kwargs: Any) -> Any:
        raise SdkError("Model.package is not supported on pipesched", hint=_SERVING)

    @staticmethod
    def profile(*args: Any, **kwargs: Any) -> Any:
        raise SdkError("Model.profile is not supported on pipesched", hint=_SERVING)


def register_run_model(
    workspace: Workspace,
    run_id: str,
    step: str | None,
    model_name: str,
    model_path: str | None,
    tags: dict[str, Any] | None,
    properties: dict[str, Any] | None,
    description: str | None,
) -> Model:
    """``run.register_model`` of a pipeline or step run (``scheduler.sdk.runs``)."""
    _check_name(model_name)
    data = _access(workspace).register_run(
        run_id,
        step,
        model_name,
        model_path,
        _dict("tags", tags),
        _dict("properties", properties),
        description,
    )
    return Model._from_json(workspace, data)


def _find(
    workspace: Workspace,
    name: str,
    version: int | None,
    tags: Sequence[Any] | None,
    properties: Sequence[Any] | None,
    run_id: str | None,
) -> dict[str, Any]:
    access = _access(workspace)
    if not (tags or properties or run_id) or version is not None:
        return access.get(name, version)
    found = access.list(name, _filters("tags", tags), _filters("properties", properties), run_id)
    if not found:
        raise NotFound(f"no version of model {name!r} matches those tags, properties and run")
    return found[0]


def _check_name(name: str) -> None:
    """Before anything is copied or sent: the daemon would refuse it too."""
    try:
        runtime.check_model_name(name)
    except ValueError as exc:
        raise SdkError(str(exc)) from None


def _dict(what: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SdkError(f"{what} must be a dict, not {type(value).__name__}")
    return dict(value)


def _filters(what: str, specs: Iterable[Any] | dict[str, Any] | None) -> list[str]:
    """Azure's filter list (``"key"`` or ``["key", "value"]``) as ``KEY`` / ``KEY=VALUE``."""
    if not specs:
        return []
    if isinstance(specs, dict):
        return [f"{key}={value}" for key, value in specs.items()]
    if isinstance(specs, str):
        raise SdkError(f"{what} must be a list, e.g. ['key', ['key2', 'value']]")
    texts = []
    for spec in specs:
        if isinstance(spec, str):
            texts.append(spec)
        elif isinstance(spec, list | tuple) and len(spec) == 2:
            texts.append(f"{spec[0]}={spec[1]}")
        else:
            raise SdkError(
                f"cannot filter {what} by {spec!r}", hint="give 'key' or ['key', 'value']"
            )
    return texts


# -- the registry, embedded or through a daemon -----------------------------------------------------


class _Registry(Protocol):
    def register(
        self,
        source: Path,
        name: str,
        tags: dict[str, Any],
        properties: dict[str, Any],
        description: str | None,
    ) -> dict[str, Any]: ...

    def register_run(
        self,
        run_id: str,
        step: str | None,
        name: str,
        model_path: str | None,
        tags: dict[str, Any],
        properties: dict[str, Any],
        description: str | None,
    ) -> dict[str, Any]: ...

    def get(self, name: str, version: int | None) -> dict[str, Any]: ...

    def list(
        self,
        name: str | None,
        tags: list[str],
        properties: list[str],
        run_id: str | None,
        latest: bool = False,
    ) -> list[dict[str, Any]]: ...

    def download(self, name: str, version: int, target_dir: Path, exist_ok: bool) -> str: ...

    def local_path(self, model: Model) -> str | None:
        """The registered file's path when it is on this machine."""


def _access(workspace: Workspace) -> _Registry:
    backend = workspace._backend
    if isinstance(backend, RemoteBackend):
        return _RemoteRegistry(backend)
    return _EmbeddedRegistry(backend)


class _EmbeddedRegistry:
    """This machine's registry, through the services (as the CLI reads it)."""

    def __init__(self, backend: Any) -> None:
        # lazy: the services and the store load only for an embedded workspace
        from scheduler.services import models as service

        self._service = service
        self._config, self._store = backend.config, backend.store

    def register(
        self,
        source: Path,
        name: str,
        tags: dict[str, Any],
        properties: dict[str, Any],
        description: str | None,
    ) -> dict[str, Any]:
        record = self._service.register_model(
            self._config,
            self._store,
            source,
            name,
            tags=tags,
            properties=properties,
            description=description,
        )
        return record.to_json()

    def register_run(
        self,
        run_id: str,
        step: str | None,
        name: str,
        model_path: str | None,
        tags: dict[str, Any],
        properties: dict[str, Any],
        description: str | None,
    ) -> dict[str, Any]:
        record = self._service.register_run_model(
            self._config,
            self._store,
            run_id,
            name,
            model_path,
            step=step,
            tags=tags,
            properties=properties,
            description=description,
        )
        return record.to_json()

    def get(self, name: str, version: int | None) -> dict[str, Any]:
        return self._store.get_model(name, version).to_json()

    def list(
        self,
        name: str | None,
        tags: list[str],
        properties: list[str],
        run_id: str | None,
        latest: bool = False,
    ) -> list[dict[str, Any]]:
        records = self._service.list_models(
            self._store, name, tags=tags, properties=properties, run_id=run_id, latest=latest
        )
        return [record.to_json() for record in records]

    def download(self, name: str, version: int, target_dir: Path, exist_ok: bool) -> str:
        record = self._store.get_model(name, version)
        return str(self._service.download_model(record, target_dir, exist_ok))

    def local_path(self, model: Model) -> str | None:
        return model.path


class _RemoteRegistry:
    """A daemon's registry over ``/api/v1/models``."""

    def __init__(self, backend: RemoteBackend) -> None:
        self._backend = backend

    def _path(self, name: str, *rest: object) -> str:
        return "/".join(["/api/v1/models", quote(name, safe=""), *map(str, rest)])

    def register(
        self,
        source: Path,
        name: str,
        tags: dict[str, Any],
        properties: dict[str, Any],
        description: str | None,
    ) -> dict[str, Any]:
        upload = self._backend._json(
            "POST",
            self._path(name, "files"),
            data=_archive(source),
            content_type="application/gzip",
        )
        body: dict[str, Any] = {"upload": upload["upload"], "tags": tags}
        body.update(properties=properties, description=description)
        return self._backend._json("POST", self._path(name), body)

    def register_run(
        self,
        run_id: str,
        step: str | None,
        name: str,
        model_path: str | None,
        tags: dict[str, Any],
        properties: dict[str, Any],
        description: str | None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"run_id": run_id, "step": step, "model_path": model_path}
        body.update(tags=tags, properties=properties, description=description)
        return self._backend._json("POST", self._path(name), body)

    def get(self, name: str, version: int | None) -> dict[str, Any]:
        path = self._path(name) if version is None else self._path(name, version)
        return self._backend._json("GET", path)

    def list(
        self,
        name: str | None,
        tags: list[str],
        properties: list[str],
        run_id: str | None,
        latest: bool = False,
    ) -> list[dict[str, Any]]:
        query: list[tuple[str, str]] = [("name", name)] if name is not None else []
        query += [("tag", tag) for tag in tags] + [("property", p) for p in properties]
        if run_id is not None:
            query.append(("run_id", run_id))
        if latest:
            query.append(("latest", "true"))
        suffix = f"?{urlencode(query)}" if query else ""
        return self._backend._json("GET", f"/api/v1/models{suffix}")

    def download(self, name: str, version: int, target_dir: Path, exist_ok: bool) -> str:
        # lazy: unpacking is the services' (the same checks as the daemon's for an upload)
        from scheduler.services.models import unpack_model

        fd, spooled = tempfile.mkstemp(prefix=".pipesched-model-", suffix=".tar")
        archive = Path(spooled)
        try:
            with os.fdopen(fd, "wb") as out, _sdk_errors():
                path = self._path(name, version, "files")
                for chunk in self._backend.client.stream(path, timeout=None):
                    out.write(chunk)
            return str(unpack_model(archive, target_dir, exist_ok))
        finally:
            archive.unlink(missing_ok=True)

    def local_path(self, model: Model) -> str | None:
        return None


def _archive(source: Path) -> bytes:
    """The model's file or folder, under its own name, as a tar.gz (links followed)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", dereference=True) as archive:
        archive.add(source, arcname=source.resolve().name)
    return buffer.getvalue()
