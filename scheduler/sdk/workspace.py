"""Azure ML's ``Workspace`` and ``Experiment`` on pipesched.

A workspace is where runs go: a pipesched config on this machine (embedded: the store is read
directly and a submitted run executes in a child process) or a daemon's REST API (a URL and a
token). Azure's identity arguments (subscription, resource group) have nothing to name here;
they are accepted with a warning so that a notebook's first cell keeps working, and the
identity attributes a notebook prints have fixed local values (``resource_group`` and
``location`` are ``"local"``, ``subscription_id`` the all-zero GUID).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

from scheduler import __version__
from scheduler.core.errors import PipeschedError
from scheduler.sdk._warn import SdkError, ignore_given, ignored
from scheduler.sdk.auth import ENV_TOKEN, AbstractAuthentication
from scheduler.sdk.compute import AmlCompute, target_of
from scheduler.sdk.datastore import Datastore
from scheduler.sdk.published import PipelineEndpoint, PublishedPipeline
from scheduler.sdk.remote import RemoteBackend

if TYPE_CHECKING:
    from scheduler.definitions.config import Config
    from scheduler.sdk.backend import Backend
    from scheduler.sdk.runs import PipelineRun

ENV_URL = "PIPESCHED_URL"
ENV_CONFIG = "PIPESCHED_CONFIG"
_IDENTITY = "a pipesched workspace is a config file or a daemon URL, not an Azure subscription"

SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "local"
LOCATION = "local"
CONFIG_FOLDER = ".azureml"  # where Azure's write_config puts config.json, and so do we
CONFIG_FILE = "config.json"
WRITTEN_KEY = "pipesched"  # the section of a config.json that write_config wrote here


class Workspace:
    """A pipesched installation seen from Python: ``config=`` a pipesched.yaml (embedded), or
    ``url=`` + ``token=`` a daemon's API. Most notebooks call ``Workspace.from_config()``.
    ``auth=`` takes the SDK's authentication objects (``scheduler.sdk.auth``): given to a daemon
    workspace without ``token=``, the object's token ($PIPESCHED_TOKEN) is used."""

    def __init__(
        self,
        subscription_id: str | None = None,
        resource_group: str | None = None,
        workspace_name: str | None = None,
        auth: Any = None,
        _location: str | None = None,
        _disable_service_check: bool = False,
        _workspace_id: str | None = None,
        sku: str = "basic",
        tags: dict[str, str] | None = None,
        _cloud: str = "AzureCloud",
        *,
        config: str | os.PathLike[str] | None = None,
        url: str | None = None,
        token: str | None = None,
    ) -> None:
        login = auth if isinstance(auth, AbstractAuthentication) else None
        ignore_given(
            "Workspace",
            {
                "subscription_id": subscription_id,
                "resource_group": resource_group,
                "auth": None if login is not None else auth,
                "_location": _location,
                "_workspace_id": _workspace_id,
                "tags": tags,
            },
            dict.fromkeys(
                ("subscription_id", "resource_group", "auth", "_location", "_workspace_id", "tags"),
                _IDENTITY,
            ),
        )
        self._config: Config | None = None
        self._backend: Backend
        self._sku = sku
        if url is not None:
            if config is not None:
                raise SdkError("give either config= (embedded) or url= + token= (a daemon)")
            token = token or (login.get_token() if login is not None else None)
            if not token:
                raise SdkError(
                    f"a daemon workspace needs token= as well as url={url!r}",
                    hint=f"create one with: pipesched token create NAME; pass it as token= or "
                    f"set ${ENV_TOKEN}",
                )
            self._backend = RemoteBackend(url, token)
            if login is not None:
                login._bind(token)
            self._name = workspace_name or urlsplit(self._backend.origin).netloc
        else:
            # lazy: a daemon workspace (url=) needs neither the config loader nor the store
            from scheduler.definitions.config import find_config, load_config
            from scheduler.sdk.embedded import EmbeddedBackend

            path = find_config(config)
            self._config = load_config(path)
            self._backend = EmbeddedBackend(path, self._config)
            self._name = workspace_name or path.parent.parent.name or str(path)

    # -- finding one ------------------------------------------------------------------------

    @staticmethod
    def from_config(
        path: str | os.PathLike[str] | None = None,
        auth: Any = None,
        _logger: Any = None,
        _file_name: str | None = None,
    ) -> Workspace:
        """With no ``path``: ``$PIPESCHED_URL`` + ``$PIPESCHED_TOKEN`` (a daemon), else
        ``$PIPESCHED_CONFIG``, else a ``.azureml/config.json`` or ``config.json`` here that
        ``write_config()`` wrote, else the CLI's config search (./config/pipesched.yaml,
        /etc/pipesched/...). ``path`` may be a pipesched.yaml, a config.json that
        ``write_config()`` wrote, or a folder holding one of them."""
        login = auth if isinstance(auth, AbstractAuthentication) else None
        ignore_given(
            "Workspace.from_config", {"auth": None if login else auth}, {"auth": _IDENTITY}
        )
        if path is None and _file_name is None:
            url = os.environ.get(ENV_URL)
            if url:
                return Workspace(url=url, token=os.environ.get(ENV_TOKEN), auth=login)
            written = None if os.environ.get(ENV_CONFIG) else _written_config_here()
            if written is not None:
                return _from_written(written, login)
            return Workspace(config=None, auth=login)
        file = _config_file(Path(path or "."), _file_name)
        if file.suffix == ".json":
            return _from_written(file, login)
        return Workspace(config=file, auth=login)

    @staticmethod
    def get(
        name: str,
        auth: Any = None,
        subscription_id: str | None = None,
        resource_group: str | None = None,
        location: str | None = None,
        cloud: str = "AzureCloud",
        id: str | None = None,
    ) -> Workspace:
        """Azure finds a workspace by name in a subscription; here the config search decides
        (``Workspace.from_config()``)."""
        ignored(
            "Workspace.get",
            "name",
            "pipesched has no named workspaces; Workspace.from_config() finds the workspace",
        )
        login = auth if isinstance(auth, AbstractAuthentication) else None
        ignore_given(
            "Workspace.get",
            {
                "auth": None if login else auth,
                "subscription_id": subscription_id,
                "resource_group": resource_group,
                "location": location,
                "id": id,
            },
            dict.fromkeys(
                ("auth", "subscription_id", "resource_group", "location", "id"), _IDENTITY
            ),
        )
        return Workspace.from_config(auth=login)

    # -- what it holds ----------------------------------------------------------------------

    @property
    def name(self) -> str:
        """``workspace_name`` when given; else the folder that holds config/pipesched.yaml
        (embedded), or the daemon's host:port (a daemon)."""
        return self._name

    @property
    def subscription_id(self) -> str:
        """Always the all-zero GUID: there is no Azure subscription."""
        return SUBSCRIPTION_ID

    @property
    def resource_group(self) -> str:
        return RESOURCE_GROUP

    @property
    def location(self) -> str:
        return LOCATION

    @property
    def sku(self) -> str:
        return self._sku

    @property
    def tags(self) -> dict[str, str]:
        return {}

    def get_details(self) -> dict[str, Any]:
        """Azure's workspace details, with the values of this workspace (no Azure resource is
        behind it: registry, key vault, storage and insights are None), plus pipesched's
        ``pipeschedVersion`` and where the workspace is (``configFile`` or ``url``)."""
        return {
            "id": self._resource_id(),
            "name": self.name,
            "location": self.location,
            "type": "pipesched/workspaces",
            "tags": self.tags,
            "sku": self.sku,
            "workspaceid": str(uuid.uuid5(uuid.NAMESPACE_URL, self._backend.describe())),
            "description": "",
            "friendlyName": self.name,
            "creationTime": None,
            "containerRegistry": None,
            "keyVault": None,
            "applicationInsights": None,
            "storageAccount": None,
            "hbiWorkspace": False,
            "provisioningState": "Succeeded",
            "pipeschedVersion": __version__,
            "configFile": str(self._config_path()) if self._config_path() else None,
            "url": self._backend.origin if isinstance(self._backend, RemoteBackend) else None,
        }

    def write_config(
        self, path: str | os.PathLike[str] | None = None, file_name: str | None = None
    ) -> None:
        """Write ``<path>/.azureml/<file_name>`` (default ./.azureml/config.json), as Azure does,
        for ``Workspace.from_config()`` to read back: Azure's three keys with this workspace's
        values, plus a ``pipesched`` section naming the config file (relative to the written
        file) or the daemon URL. A token is never written: a daemon workspace read back takes
        ``$PIPESCHED_TOKEN``."""
        folder = Path(path if path is not None else ".")
        if folder.name != CONFIG_FOLDER:
            folder = folder / CONFIG_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        name = file_name or CONFIG_FILE
        if not name.endswith(".json"):
            name += ".json"
        config_path = self._config_path()
        if config_path is not None:
            where = {"config": os.path.relpath(config_path, folder.resolve())}
        else:
            assert isinstance(self._backend, RemoteBackend)
            where = {"url": self._backend.origin}
        data = {
            "subscription_id": self.subscription_id,
            "resource_group": self.resource_group,
            "workspace_name": self.name,
            WRITTEN_KEY: where,
        }
        (folder / name).write_text(json.dumps(data, indent=4) + "\n")

    def _config_path(self) -> Path | None:
        path = getattr(self._backend, "config_path", None)
        return Path(path).resolve() if path is not None else None

    def _resource_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/pipesched/workspaces/{self.name}"
        )

    @property
    def datastores(self) -> dict[str, Datastore]:
        return {name: Datastore(self, name) for name in self._backend.datastore_names()}

    def get_default_datastore(self) -> Datastore:
        return Datastore(self, "default")

    def _datastore_path(self, name: str) -> Path | None:
        return self._backend.datastore_path(name)

    @property
    def compute_targets(self) -> dict[str, AmlCompute]:
        """The compute targets of the config (through a daemon, of the daemon's config), by
        name: each an ``AmlCompute`` with ``.name``, ``.type`` (``"AmlCompute"``) and
        ``.pipesched_type`` (``local`` or ``dask``)."""
        return {
            name: target_of(self, name, record)
            for name, record in self._compute_target_records().items()
        }

    def _compute_target_records(self) -> dict[str, dict[str, Any]]:
        return {
            target["name"]: {"type": target["type"], "max_workers": target.get("max_workers")}
            for target in self._backend.compute_targets()
        }

    @property
    def experiments(self) -> dict[str, Experiment]:
        """Experiments that have runs, by name."""
        names: dict[str, Experiment] = {}
        for run in self._backend.list_runs(limit=0):
            names.setdefault(run["experiment"], Experiment(self, run["experiment"]))
        return names

    def _pipeline_run(
        self, experiment: str, run_id: str, data: dict[str, Any] | None = None
    ) -> PipelineRun:
        """The handle of run ``run_id`` of ``experiment``. Published pipelines, runs, pipelines
        and schedules hold their workspace and make run handles through it, so none of them
        imports this module (which imports theirs)."""
        return Experiment(self, experiment)._run(run_id, data)

    def __repr__(self) -> str:
        return f"Workspace.create(name={self.name!r}, {self._backend.describe()})"


def _config_file(path: Path, file_name: str | None) -> Path:
    """The file a ``from_config(path=..., _file_name=...)`` means: a pipesched.yaml, or a
    config.json (``_from_written`` reads it, or refuses an Azure one)."""
    if file_name is not None:
        if not path.is_dir():
            return path.parent / file_name
        for candidate in (path / CONFIG_FOLDER / file_name, path / file_name):
            if candidate.is_file():
                return candidate
        raise PipeschedError(
            f"no {file_name} in {path} or {path / CONFIG_FOLDER}",
            hint="write one with ws.write_config(path, file_name)",
        )
    if path.is_dir():
        for candidate in (path / "config" / "pipesched.yaml", path / "pipesched.yaml"):
            if candidate.is_file():
                return candidate
        for candidate in (path / CONFIG_FOLDER / CONFIG_FILE, path / CONFIG_FILE):
            if candidate.is_file():
                return candidate
        raise PipeschedError(
            f"no pipesched config in {path} (looked for config/pipesched.yaml, pipesched.yaml "
            "and a config.json that ws.write_config() wrote)",
            hint="pass the path of a pipesched.yaml",
        )
    return path


def _written_config_here() -> Path | None:
    """A config.json that ``write_config()`` wrote into the working directory (an Azure one is
    not ours: the search goes on to pipesched's own config)."""
    for candidate in (Path(CONFIG_FOLDER) / CONFIG_FILE, Path(CONFIG_FILE)):
        try:
            if candidate.is_file() and WRITTEN_KEY in _read_json(candidate):
                return candidate
        except (OSError, ValueError):
            continue
    return None


def _read_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def _from_written(path: Path, login: AbstractAuthentication | None) -> Workspace:
    """The workspace a config.json written by ``write_config()`` names; an Azure one (no
    ``pipesched`` section) is refused with what to point at instead."""
    try:
        data = _read_json(path)
    except (OSError, ValueError) as exc:
        raise SdkError(f"cannot read {path}: {exc}") from None
    where = data.get(WRITTEN_KEY)
    if not isinstance(where, dict):
        _refuse_azure(path)
    name = data.get("workspace_name")
    if isinstance(where.get("config"), str):
        config = path.parent / where["config"]
        return Workspace(workspace_name=name, config=config, auth=login)
    if isinstance(where.get("url"), str):
        return Workspace(
            workspace_name=name, url=where["url"], token=os.environ.get(ENV_TOKEN), auth=login
        )
    raise SdkError(
        f"{path}: its {WRITTEN_KEY!r} section names neither a config nor a url",
        hint="write it again with ws.write_config()",
    )


def _refuse_azure(path: Path) -> NoReturn:
    raise SdkError(
        f"{path} is an Azure ML workspace config (subscription, resource group); pipesched "
        "needs its own config",
        hint="Workspace.from_config(path='config/pipesched.yaml'), or "
        "Workspace(url='http://host:8790', token='pst_...') for a daemon",
    )


class Experiment:
    """A named group of runs (a run's ``experiment``). Exists as soon as a run names it."""

    def __init__(
        self,
        workspace: Workspace,
        name: str,
        _skip_name_validation: bool = False,
        _id: str | None = None,
        _archived_time: str | None = None,
        _create_in_cloud: bool = True,
        _experiment_dto: Any = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise SdkError("an experiment needs a name", hint='Experiment(ws, "training")')
        self.workspace = workspace
        self.name = name
        self.id = name

    def submit(self, config: Any, tags: dict[str, str] | None = None, **kwargs: Any) -> PipelineRun:
        """Run ``config``: a Pipeline (kwargs ``pipeline_parameters``, ``regenerate_outputs``,
        ``continue_on_step_failure``), or a PublishedPipeline / PipelineEndpoint."""
        ignore_given("Experiment.submit", {"tags": tags}, {"tags": "runs carry no tags here"})
        parameters = dict(kwargs.pop("pipeline_parameters", None) or {})
        regenerate = bool(kwargs.pop("regenerate_outputs", False))
        continue_on_failure = kwargs.pop("continue_on_step_failure", None)
        pipeline_version = kwargs.pop("pipeline_version", None)  # an endpoint's "0", "1"...
        for argument in kwargs:
            ignored("Experiment.submit", argument, "pipesched's submit does not know it")
        if isinstance(config, PublishedPipeline | PipelineEndpoint):
            run_id = config._start(
                self.name, parameters, pipeline_version, continue_on_failure, regenerate
            )
        elif hasattr(config, "_submit_to"):
            run_id = config._submit_to(self.name, parameters, regenerate, continue_on_failure)
        else:
            raise SdkError(
                f"cannot submit a {type(config).__name__}",
                hint="submit a Pipeline, a PublishedPipeline or a PipelineEndpoint",
            )
        return self._run(run_id)

    def get_runs(
        self,
        type: str | None = None,
        tags: Any = None,
        properties: Any = None,
        include_children: bool = False,
    ) -> Iterator[PipelineRun]:
        """This experiment's runs, newest first (all of them: runs carry no tags or
        properties here, so ``tags``/``properties`` filters are ignored with a warning)."""
        ignore_given(
            "Experiment.get_runs",
            {"tags": tags, "properties": properties},
            dict.fromkeys(("tags", "properties"), "runs carry no tags or properties here"),
        )

        for run in self.workspace._backend.list_runs(experiment=self.name, limit=0):
            yield self._run(run["id"], run)

    def _run(self, run_id: str, data: dict[str, Any] | None = None) -> PipelineRun:
        # lazy: runs loads SQLAlchemy (watch reads the store's records); a workspace alone must not
        from scheduler.sdk.runs import PipelineRun

        return PipelineRun(self, run_id, _data=data)

    @staticmethod
    def list(workspace: Workspace, *args: Any, **kwargs: Any) -> list[Experiment]:
        return list(workspace.experiments.values())

    def __repr__(self) -> str:
        return f"Experiment(Name: {self.name}, Workspace: {self.workspace.name})"
