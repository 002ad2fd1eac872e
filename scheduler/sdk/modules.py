"""Azure ML's ``Module``, ``ModuleVersion`` and ``ModuleStep``: a named step definition kept in
versions, and the step that runs one version in a pipeline.

A module version here is a Python script with its source directory (copied when the version is
published, and never changed after), the names of its input and output ports, its parameters
(``AML_PARAMETER_<name>`` variables, as on Azure) and, optionally, its arguments. A
``ModuleStep`` is a ``python_script`` step of that copy: ``inputs_map`` and ``outputs_map``
wire pipeline data to the version's ports, so the pipeline validates, runs, reuses and saves
as any other.

Modules are files: ``<state_dir>/modules/`` for an embedded workspace; through a daemon, a
folder of this machine's per daemon (``$XDG_DATA_HOME/pipesched/modules/HOST_PORT``), since a
ModuleStep's files are uploaded with each pipeline that uses it. Versions that need an Azure
service (ADLA, Azure Batch) are refused with the alternative.
"""

from __future__ import annotations

import builtins
import fcntl
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scheduler.core.errors import NotFound
from scheduler.definitions.fingerprint import source_tree_hash
from scheduler.sdk._warn import SdkError, ignore_given, refused
from scheduler.sdk.data import PipelineParameter
from scheduler.sdk.datapath import DataPath, path_default, resolve_path
from scheduler.sdk.pipeline import _copy_sources
from scheduler.sdk.steps import _COMMON_IGNORED, PipelineStep
from scheduler.services.pipeline_files import make_read_only

if TYPE_CHECKING:
    from scheduler.sdk.workspace import Workspace

STATUSES = ("Active", "Deprecated", "Disabled")
_PROVIDER = "the workspace decides"
_AZURE_ONLY = {
    "publish_adla_script": (
        "Azure Data Lake Analytics runs U-SQL in Azure",
        "write the step as `type: sql` in pipeline.yaml, or run your SQL tool in a CommandStep",
    ),
    "publish_azure_batch": (
        "Azure Batch runs executables on Azure's pools",
        "run the executable in a CommandStep(command=[...]) on a configured compute target",
    ),
}


# -- port definitions ---------------------------------------------------------------------------


class InputPortDef:
    """An input of a module version: its name is what ``ModuleStep(inputs_map=...)`` wires."""

    def __init__(
        self,
        name: str,
        data_types: list[str] | None = None,
        default_datastore_mode: str | None = None,
        default_path_on_compute: str | None = None,
        is_optional: bool = False,
        default_overwrite: bool | None = None,
        default_data_reference_name: str | None = None,
        is_resource: bool = False,
        label: str | None = None,
        additional_transformations: Any = None,
        **kwargs: Any,
    ) -> None:
        self.name = name
        self.data_types = data_types or ["AnyFile", "AnyDirectory"]
        self.default_datastore_mode = default_datastore_mode
        self.default_path_on_compute = default_path_on_compute
        self.is_optional = is_optional
        self.default_overwrite = default_overwrite
        self.default_data_reference_name = default_data_reference_name
        self.is_resource = is_resource
        self.label = label
        self.additional_transformations = additional_transformations

    def __repr__(self) -> str:
        return f"InputPortDef(name={self.name!r})"


class OutputPortDef:
    """An output of a module version: its name is what ``ModuleStep(outputs_map=...)`` wires."""

    def __init__(
        self,
        name: str,
        default_datastore_name: str | None = None,
        default_datastore_mode: str | None = None,
        default_path_on_compute: str | None = None,
        is_directory: bool = False,
        data_type: str | None = None,
        default_overwrite: bool | None = None,
        training_output: Any = None,
        label: str | None = None,
    ) -> None:
        self.name = name
        self.default_datastore_name = default_datastore_name
        self.default_datastore_mode = default_datastore_mode
        self.default_path_on_compute = default_path_on_compute
        self.is_directory = is_directory
        self.data_type = data_type or ("AnyDirectory" if is_directory else "AnyFile")
        self.default_overwrite = default_overwrite
        self.training_output = training_output
        self.label = label

    def __repr__(self) -> str:
        return f"OutputPortDef(name={self.name!r})"


def _port(item: Any, kind: str) -> dict[str, Any]:
    """A port as a version keeps it: a port definition, or anything with a ``name`` (Azure
    also takes PipelineData and bindings and names the port after them)."""
    name = getattr(item, "name", None)
    if not isinstance(name, str) or not name:
        raise refused("Module.publish_python_script", f"{kind}s", f"{item!r} has no name")
    return {"name": name, "label": getattr(item, "label", None) or name}


# -- the registry (files) -----------------------------------------------------------------------


class _Registry:
    """Modules of one workspace, one folder each: ``module.json`` and ``versions/<id>/``
    (``version.json`` and ``files/``, the source copy). Changes hold a lock on the folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @contextmanager
    def locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def modules(self) -> list[dict[str, Any]]:
        if not self.root.is_dir():
            return []
        found = []
        for entry in sorted(self.root.iterdir()):
            file = entry / "module.json"
            if file.is_file():
                found.append(_read(file))
        return found

    def module(self, module_id: str | None = None, name: str | None = None) -> dict[str, Any]:
        for data in self.modules():
            if data["id"] == module_id or (module_id is None and data["name"] == name):
                return data
        wanted = f"id {module_id!r}" if module_id is not None else f"name {name!r}"
        known = ", ".join(sorted(d["name"] for d in self.modules())) or "none yet"
        raise NotFound(f"no module with {wanted}", hint=f"modules: {known}")

    def save_module(self, data: dict[str, Any]) -> None:
        _write(self.root / data["id"] / "module.json", data)

    def version_dir(self, module_id: str, version_id: str) -> Path:
        return self.root / module_id / "versions" / version_id

    def version(self, module_id: str, version_id: str) -> dict[str, Any]:
        file = self.version_dir(module_id, version_id) / "version.json"
        if not file.is_file():
            raise NotFound(f"no module version {version_id!r}")
        return _read(file)

    def find_version(self, version_id: str) -> dict[str, Any]:
        for data in self.modules():
            for entry in data["versions"]:
                if entry["module_version_id"] == version_id:
                    return self.version(data["id"], version_id)
        raise NotFound(f"no module version {version_id!r}")

    def save_version(self, data: dict[str, Any]) -> None:
        folder = self.version_dir(data["module_id"], data["module_version_id"])
        _write(folder / "version.json", data)


def _read(file: Path) -> dict[str, Any]:
    data = json.loads(file.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _write(file: Path, data: dict[str, Any]) -> None:
    """Written whole to a temporary name, then renamed: a reader never sees half a file."""
    file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=file.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2)
            out.write("\n")
        os.replace(tmp, file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _registry(workspace: Workspace) -> _Registry:
    return _Registry(Path(workspace._backend.modules_dir()))


def _now() -> str:
    return datetime.now(UTC).isoformat()


# -- Module -------------------------------------------------------------------------------------


class ModuleVersionDescriptor:
    """A version label and the id of its ModuleVersion."""

    def __init__(self, version: str, module_version_id: str) -> None:
        self.version = version
        self.module_version_id = module_version_id

    def __repr__(self) -> str:
        return (
            f"ModuleVersionDescriptor(Version: {self.version}, "
            f"ModuleVersionId: {self.module_version_id})"
        )


class Module:
    """A named container of versions; ``Module.create`` or ``Module.get`` give one."""

    def __init__(
        self,
        workspace: Workspace,
        module_id: str,
        name: str,
        description: str | None,
        status: str,
        default_version: str | None,
        module_version_list: builtins.list[ModuleVersionDescriptor],
        _module_provider: Any = None,
        _module_version_provider: Any = None,
    ) -> None:
        self._workspace = workspace
        self._id = module_id
        self._name = name
        self._description = description
        self._status = status
        self._default_version = default_version
        self._module_version_list = module_version_list

    @classmethod
    def _from_json(cls, workspace: Workspace, data: dict[str, Any]) -> Module:
        versions = [
            ModuleVersionDescriptor(v["version"], v["module_version_id"]) for v in data["versions"]
        ]
        return cls(
            workspace,
            data["id"],
            data["name"],
            data.get("description"),
            data.get("status", "Active"),
            data.get("default_version"),
            versions,
        )

    def _reload(self) -> dict[str, Any]:
        data = _registry(self._workspace).module(self._id)
        fresh = Module._from_json(self._workspace, data)
        self.__dict__.update(fresh.__dict__)
        return data

    # -- making and finding -----------------------------------------------------------------

    @staticmethod
    def create(
        workspace: Workspace, name: str, description: str, _workflow_provider: Any = None
    ) -> Module:
        """A new module named ``name``. Names are unique in a workspace: a module of that name
        is returned as it is (its versions kept, its description set to ``description``), so
        a notebook can be run again."""
        _ignore_provider("Module.create", _workflow_provider)
        if not isinstance(name, str) or not name.strip():
            raise SdkError("a module needs a name", hint='Module.create(ws, name="Add", ...)')
        registry = _registry(workspace)
        with registry.locked():
            try:
                data = registry.module(name=name)
            except NotFound:
                data = {
                    "id": str(uuid.uuid4()),
                    "name": name,
                    "status": "Active",
                    "default_version": None,
                    "versions": [],
                    "created_at": _now(),
                }
            data["description"] = description
            data["updated_at"] = _now()
            registry.save_module(data)
        return Module._from_json(workspace, data)

    @staticmethod
    def get(
        workspace: Workspace,
        module_id: str | None = None,
        name: str | None = None,
        _workflow_provider: Any = None,
    ) -> Module:
        _ignore_provider("Module.get", _workflow_provider)
        if module_id is None and name is None:
            raise SdkError("Module.get needs module_id= or name=")
        return Module._from_json(workspace, _registry(workspace).module(module_id, name))

    @staticmethod
    def get_versions(
        workspace: Workspace, name: str, _workflow_provider: Any = None
    ) -> builtins.list[ModuleVersionDescriptor]:
        return Module.get(workspace, name=name).module_version_list()

    @staticmethod
    def process_source_directory(name: str, source_directory: Any, script_name: str) -> Any:
        """The source directory, once the script is found in it."""
        script = os.path.join(os.fspath(source_directory or "."), script_name)
        if not os.path.isfile(script):
            raise SdkError(
                f"Step [{name}]: script not found at: {os.path.abspath(script)}",
                hint="give the folder that holds the script as source_directory",
            )
        return source_directory

    # -- what it holds ---------------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._id

    @property
    def name(self) -> str:
        return self._name

    @property
    def description(self) -> str | None:
        return self._description

    @property
    def status(self) -> str:
        return self._status

    @property
    def default_version(self) -> str | None:
        return self._default_version

    def get_default_version(self) -> str | None:
        return self._default_version

    def module_version_list(self) -> builtins.list[ModuleVersionDescriptor]:
        return list(self._module_version_list)

    # -- publishing versions -------------------------------------------------------------------

    def publish_python_script(
        self,
        script_name: str,
        description: str,
        inputs: builtins.list[Any],
        outputs: builtins.list[Any],
        params: dict[str, Any] | None = None,
        create_sequencing_ports: bool = True,
        version: str | None = None,
        is_default: bool = False,
        source_directory: Any = None,
        hash_paths: builtins.list[str] | None = None,
        category: str | None = None,
        arguments: builtins.list[Any] | None = None,
        runconfig: Any = None,
    ) -> ModuleVersion:
        """A new version that runs ``script_name`` from a copy of ``source_directory`` made
        now. ``version`` defaults to the next whole number. Publishing a label again returns
        that version when nothing differs (so a notebook can be run again), and is refused
        with the next free label when something does."""
        ignore_given(
            "Module.publish_python_script",
            {"hash_paths": hash_paths, "runconfig": runconfig},
            {
                "hash_paths": _COMMON_IGNORED["hash_paths"],
                "runconfig": _COMMON_IGNORED["runconfig"],
            },
        )
        source = resolve_path(source_directory if source_directory is not None else ".")
        Module.process_source_directory(self.name, source, script_name)
        interface = {
            "script_name": script_name,
            "inputs": [_port(i, "input") for i in inputs or []],
            "outputs": [_port(o, "output") for o in outputs or []],
            "params": {k: _param_value(k, v) for k, v in (params or {}).items()},
            "arguments": _annotated(arguments),
        }
        fingerprint = {**interface, "source_hash": source_tree_hash(source)}
        registry = _registry(self._workspace)
        with registry.locked():
            data = registry.module(self._id)
            taken = {v["version"]: v["module_version_id"] for v in data["versions"]}
            label = str(version) if version is not None else _next_label(taken)
            if label in taken:
                existing = registry.version(self._id, taken[label])
                if {k: existing.get(k) for k in fingerprint} != fingerprint:
                    raise SdkError(
                        f"module '{self.name}' already has a different version '{label}'",
                        hint=f"publish it as version={_next_label(taken)!r}; a version never "
                        "changes",
                    )
                entity = existing
            else:
                entity = _publish(registry, data, label, source, description, category)
                entity.update(fingerprint)
                registry.save_version(entity)
                data["versions"].append(
                    {"version": label, "module_version_id": entity["module_version_id"]}
                )
            if is_default:
                data["default_version"] = label
            data["updated_at"] = _now()
            registry.save_module(data)
        self._reload()
        return ModuleVersion(self._workspace, entity, label, None)

    def publish(self, description: str, execution_type: str, *args: Any, **kwargs: Any) -> Any:
        raise refused(
            "Module.publish",
            "execution_type",
            f"a {execution_type!r} module runs on Azure's execution services",
            hint="publish a Python script with module.publish_python_script(...)",
        )

    def publish_adla_script(self, *args: Any, **kwargs: Any) -> Any:
        raise _azure_only("publish_adla_script")

    def publish_azure_batch(self, *args: Any, **kwargs: Any) -> Any:
        raise _azure_only("publish_azure_batch")

    # -- choosing a version --------------------------------------------------------------------

    def resolve(self, version: str | None = None) -> ModuleVersion:
        """Azure's rule: the version named (NotFound when there is none of that label); else
        the default; else, when every active label is a dotted number, the highest; else the
        version changed last. Disabled versions are passed over unless named."""
        data = self._reload()
        registry = _registry(self._workspace)
        by_label = {v["version"]: v["module_version_id"] for v in data["versions"]}
        if version is not None:
            label = str(version)
            if label not in by_label:  # Azure would quietly run another version
                raise NotFound(
                    f"module '{self.name}' has no version {label!r}",
                    hint=f"versions: {', '.join(by_label) or 'none'}",
                )
            return self._version(registry, label, by_label[label])
        default = data.get("default_version")
        if isinstance(default, str) and default in by_label:
            return self._version(registry, default, by_label[default])
        every = [registry.version(self._id, version_id) for version_id in by_label.values()]
        candidates = [c for c in every if c.get("status") != "Disabled"]
        if not candidates:
            raise NotFound(
                f"module '{self.name}' has no version to use",
                hint="publish one with module.publish_python_script(...)",
            )
        if all(re.fullmatch(r"\d+(\.\d+)*", c["version"]) for c in candidates):
            chosen = max(candidates, key=lambda c: [int(p) for p in c["version"].split(".")])
        else:
            chosen = max(candidates, key=lambda c: c.get("updated_at") or "")
        return ModuleVersion(self._workspace, chosen, chosen["version"], None)

    def _version(self, registry: _Registry, label: str, version_id: str) -> ModuleVersion:
        return ModuleVersion(self._workspace, registry.version(self._id, version_id), label, None)

    def get_default(self) -> ModuleVersion | None:
        data = self._reload()
        for entry in data["versions"]:
            if entry["version"] == data.get("default_version"):
                return self._version(
                    _registry(self._workspace), entry["version"], entry["module_version_id"]
                )
        return None

    def set_default_version(self, version_id: str) -> str:
        """Make the version labelled ``version_id`` the default (Azure names it so)."""
        if version_id is None:
            raise SdkError("No version was provided to be set as default")
        labels = [v.version for v in self._module_version_list]
        if str(version_id) not in labels:
            raise SdkError(
                f"version {version_id!r} is not part of module '{self.name}'",
                hint=f"versions: {', '.join(labels) or 'none'}",
            )
        self._change(default_version=str(version_id))
        return str(version_id)

    # -- changing the module ----------------------------------------------------------------------

    def _change(self, **changes: Any) -> None:
        registry = _registry(self._workspace)
        with registry.locked():
            data = registry.module(self._id)
            if "name" in changes and changes["name"] != data["name"]:
                taken = {d["name"] for d in registry.modules()}
                if changes["name"] in taken:
                    raise SdkError(f"a module named {changes['name']!r} exists already")
            data.update(changes, updated_at=_now())
            registry.save_module(data)
        self._reload()

    def set_name(self, name: str) -> None:
        if not name:
            raise SdkError("No name was provided")
        self._change(name=name)

    def set_description(self, description: str) -> None:
        if description is None:
            raise SdkError("No description was provided")
        self._change(description=description)

    def enable(self) -> None:
        self._change(status="Active")

    def disable(self) -> None:
        self._change(status="Disabled")

    def deprecate(self) -> None:
        self._change(status="Deprecated")

    def __str__(self) -> str:
        versions = [(v.version, v.module_version_id) for v in self._module_version_list]
        return (
            f"Module(Name: {self.name},\nId: {self.id},\nDescription: {self.description},\n"
            f"Versions: {versions})"
        )

    __repr__ = __str__


def _publish(
    registry: _Registry,
    module: dict[str, Any],
    label: str,
    source: Path,
    description: str | None,
    category: str | None,
) -> dict[str, Any]:
    """Copy the source into a new version's folder (read-only, as a published pipeline's); the
    version's record, to be completed and saved by the caller."""
    version_id = str(uuid.uuid4())
    folder = registry.version_dir(module["id"], version_id)
    staging = Path(tempfile.mkdtemp(prefix=".publishing-", dir=registry.root))
    try:
        _copy_sources(
            source, staging / "files", None
        )  # no config here: the state-dir rule still holds
        make_read_only(staging / "files")
        folder.parent.mkdir(parents=True, exist_ok=True)
        os.rename(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    now = _now()
    return {
        "module_version_id": version_id,
        "module_id": module["id"],
        "version": label,
        "description": description,
        "category": category,
        "status": "Active",
        "created_at": now,
        "updated_at": now,
    }


def _next_label(taken: dict[str, str]) -> str:
    numbers = [int(label) for label in taken if label.isdigit()]
    return str(max(numbers, default=0) + 1)


def _param_value(name: str, value: Any) -> Any:
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    raise refused(
        "Module.publish_python_script",
        "params",
        f"parameter {name!r} has a {type(value).__name__} value",
        hint="a version's parameters are plain values; pass a PipelineParameter in the "
        "ModuleStep's params or arguments",
    )


def _annotated(arguments: builtins.list[Any] | None) -> builtins.list[dict[str, Any]] | None:
    """A version's arguments as kept: port references, parameters and text (Azure takes the
    same four kinds)."""
    if arguments is None:
        return None
    kept: builtins.list[dict[str, Any]] = []
    for item in arguments:
        if isinstance(item, InputPortDef):
            kept.append({"input": item.name})
        elif isinstance(item, OutputPortDef):
            kept.append({"output": item.name})
        elif isinstance(item, PipelineParameter):
            default = item.default_value
            uri = path_default(default)
            kept.append({"parameter": item.name, "default": uri or default, "path": bool(uri)})
        elif isinstance(item, str):
            kept.append({"text": item})
        else:
            raise refused(
                "Module.publish_python_script",
                "arguments",
                f"a {type(item).__name__} is not a port, a PipelineParameter or text",
            )
    return kept


def _azure_only(method: str) -> SdkError:
    reason, hint = _AZURE_ONLY[method]
    return SdkError(f"Module.{method} is not supported on pipesched: {reason}", hint=hint)


def _ignore_provider(owner: str, provider: Any) -> None:
    ignore_given(owner, {"_workflow_provider": provider}, {"_workflow_provider": _PROVIDER})


# -- ModuleVersion ------------------------------------------------------------------------------


class ModuleVersion:
    """One published version of a module (made by ``Module.publish_python_script``)."""

    def __init__(
        self,
        workspace: Workspace,
        module_entity: dict[str, Any],
        version: str,
        _module_version_provider: Any,
    ) -> None:
        self._workspace = workspace
        self._entity = dict(module_entity)
        self._version = version

    @staticmethod
    def get(
        workspace: Workspace, module_version_id: str | None = None, _workflow_provider: Any = None
    ) -> ModuleVersion:
        _ignore_provider("ModuleVersion.get", _workflow_provider)
        if module_version_id is None:
            raise SdkError("ModuleVersion.get needs module_version_id=")
        entity = _registry(workspace).find_version(module_version_id)
        return ModuleVersion(workspace, entity, entity["version"], None)

    @property
    def status(self) -> str:
        return str(self._entity.get("status", "Active"))

    @property
    def module_id(self) -> str:
        return str(self._entity["module_id"])

    @property
    def module_version_id(self) -> str:
        return str(self._entity["module_version_id"])

    @property
    def version(self) -> str:
        return self._version

    @property
    def description(self) -> str | None:
        return self._entity.get("description")

    @property
    def category(self) -> str | None:
        return self._entity.get("category")

    @property
    def runconfig(self) -> None:
        return None

    @property
    def interface(self) -> dict[str, Any]:
        """pipesched's: the ports, parameters and arguments (Azure's structured interface)."""
        keys = ("inputs", "outputs", "params", "arguments")
        return {k: self._entity.get(k) for k in keys}

    @property
    def script_name(self) -> str:
        return str(self._entity["script_name"])

    @property
    def source_directory(self) -> Path:
        """The copy of the source directory made when the version was published."""
        registry = _registry(self._workspace)
        return registry.version_dir(self.module_id, self.module_version_id) / "files"

    def module(self, _workflow_provider: Any = None) -> Module:
        return Module.get(self._workspace, module_id=self.module_id)

    def _change(self, **changes: Any) -> None:
        registry = _registry(self._workspace)
        with registry.locked():
            entity = registry.version(self.module_id, self.module_version_id)
            entity.update(changes, updated_at=_now())
            registry.save_version(entity)
        self._entity = entity

    def set_description(self, description: str) -> None:
        if description is None:
            raise SdkError("No description was provided")
        self._change(description=description)

    def enable(self) -> None:
        self._change(status="Active")

    def disable(self) -> None:
        self._change(status="Disabled")

    def deprecate(self) -> None:
        self._change(status="Deprecated")

    def __str__(self) -> str:
        return (
            f"ModuleVersion(status: {self.status},\nversion: {self.version},\n"
            f"module_id: {self.module_id},\nmodule_version_id: {self.module_version_id})"
        )

    __repr__ = __str__


# -- ModuleStep ---------------------------------------------------------------------------------


class ModuleStep(PipelineStep):
    """Runs one version of a module (``type: python_script`` on its source copy). Give either
    ``module_version``, or ``module`` (with ``version``, else Azure's resolution rule picks
    one when the step is made). ``inputs_map``/``outputs_map`` wire pipeline data to the
    version's ports by name; ``arguments`` as PythonScriptStep's (without them, the version's
    own arguments, with its ports replaced by the data wired to them); the version's
    ``params`` and the step's ``params`` become ``AML_PARAMETER_<name>`` variables."""

    _type = "python_script"

    def __init__(
        self,
        module: Module | None = None,
        version: str | None = None,
        module_version: ModuleVersion | None = None,
        inputs_map: dict[str, Any] | None = None,
        outputs_map: dict[str, Any] | None = None,
        compute_target: Any = None,
        runconfig: Any = None,
        runconfig_pipeline_params: Any = None,
        arguments: builtins.list[Any] | None = None,
        params: dict[str, Any] | None = None,
        name: str | None = None,
        _workflow_provider: Any = None,
    ) -> None:
        if module_version is not None:
            if module is not None:
                raise SdkError("ModuleStep: give module or module_version, not both")
            chosen = module_version
        elif module is not None:
            chosen = module.resolve(version)
        else:
            raise SdkError("ModuleStep: module or module_version is required")
        inputs_map = dict(inputs_map or {})
        outputs_map = dict(outputs_map or {})
        _check_wiring(chosen, inputs_map, outputs_map)
        arguments = list(arguments or []) or _version_arguments(chosen, inputs_map, outputs_map)
        # The step's own values over the version's defaults; a PipelineParameter passed as an
        # argument is one of the step's own, as on Azure.
        step_params = dict(params or {})
        for item in arguments:
            if isinstance(item, PipelineParameter):
                step_params.setdefault(item.name, item)
        variables = {**(chosen._entity.get("params") or {}), **step_params}
        super().__init__(
            name or (module.name if module is not None else chosen.module().name),
            compute_target=compute_target,
            source_directory=chosen.source_directory,
            inputs=list(inputs_map.values()),
            outputs=list(outputs_map.values()),
            params=variables,
        )
        ignore_given(
            "ModuleStep",
            {
                "runconfig": runconfig,
                "runconfig_pipeline_params": runconfig_pipeline_params,
                "_workflow_provider": _workflow_provider,
            },
            {**_COMMON_IGNORED, "_workflow_provider": _PROVIDER},
        )
        self.module_version = chosen
        self._script = chosen.script_name
        self._arguments = self._scan_arguments(arguments)

    def _fields(self, r: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"script": self._script}
        if self._arguments:
            out["arguments"] = [r.text(a) for a in self._arguments]
        return out

    def _read_values(self) -> builtins.list[Any]:
        return [*self._inputs, *self._arguments]


def _check_wiring(
    version: ModuleVersion, inputs_map: dict[str, Any], outputs_map: dict[str, Any]
) -> None:
    """Every key names a port of the version (Azure fails the submit otherwise)."""
    for argument, wired, kind in (
        ("inputs_map", inputs_map, "inputs"),
        ("outputs_map", outputs_map, "outputs"),
    ):
        ports = [p["name"] for p in version._entity.get(kind) or []]
        unknown = [k for k in wired if k not in ports]
        if unknown:
            raise refused(
                "ModuleStep",
                argument,
                f"module version {version.version} has no {kind[:-1]} port "
                f"{', '.join(map(repr, unknown))}",
                hint=f"its {kind}: {', '.join(ports) or 'none'}",
            )


def _version_arguments(
    version: ModuleVersion, inputs_map: dict[str, Any], outputs_map: dict[str, Any]
) -> builtins.list[Any]:
    """The version's own arguments, its ports replaced by the data wired to them."""
    made: builtins.list[Any] = []
    for item in version._entity.get("arguments") or []:
        if "text" in item:
            made.append(item["text"])
        elif "parameter" in item:
            default = item["default"]
            if item.get("path"):
                store, _, folder = default.removeprefix("datastore://").partition("/")
                default = DataPath(store, folder)
            made.append(PipelineParameter(item["parameter"], default))
        else:
            port, wired = (
                (item["input"], inputs_map) if "input" in item else (item["output"], outputs_map)
            )
            if port not in wired:
                raise refused(
                    "ModuleStep",
                    "inputs_map" if "input" in item else "outputs_map",
                    f"the version's arguments use port {port!r}, which is not wired",
                    hint=f"wire it: {port!r}: <PipelineData or dataset>",
                )
            made.append(wired[port])
    return made
