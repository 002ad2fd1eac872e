"""Azure ML's compute target objects over the targets of pipesched.yaml's ``compute:``.

A notebook finds its cluster, else creates it:

    try:
        cluster = ComputeTarget(workspace=ws, name="cpu-cluster")
    except ComputeTargetException:
        config = AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2", max_nodes=4)
        cluster = ComputeTarget.create(ws, "cpu-cluster", config)
    cluster.wait_for_completion(show_output=True)

Here a compute target is declared, never provisioned: a configured name takes the *find*
branch, and a create for a name the config lacks is refused with the lines to add. Every
configured target (``local`` processes or a ``dask`` cluster) is an ``AmlCompute`` whose
``type`` is ``"AmlCompute"``, so the notebooks' ``type(t) is AmlCompute`` and ``t.type ==
"AmlCompute"`` checks find it; pipesched's own type is ``pipesched_type``.
"""

from __future__ import annotations

import builtins
from typing import Any

from scheduler.sdk._warn import SdkError, ignored

AML_COMPUTE = "AmlCompute"
PROVISIONED = "Succeeded"
# Azure's create refuses these names as reserved; only "local" can exist here (it is a target
# of the shipped config), the others are no target's name.
_RESERVED = ("amlcompute", "containerinstance")


class ComputeTargetException(SdkError):
    """Azure's error for a compute target that is not found or cannot be created."""


def configured_targets(workspace: Any) -> dict[str, dict[str, Any]]:
    """The workspace's compute targets by name: ``{"type": "local"|"dask", "max_workers": N}``."""
    lookup = getattr(workspace, "_compute_target_records", None)
    if lookup is not None:
        records: dict[str, dict[str, Any]] = lookup()
        return records
    config = getattr(workspace, "_config", None)  # a stand-in that holds a Config
    if config is None:
        raise ComputeTargetException(
            f"cannot list the compute targets of {workspace!r}",
            hint="pass the Workspace: ComputeTarget(workspace=ws, name='local')",
        )
    return {
        name: {"type": target.type, "max_workers": target.max_workers}
        for name, target in config.compute.items()
    }


class ComputeTarget:
    """Azure's ComputeTarget: ``ComputeTarget(workspace, name)`` finds a target of the config
    (an ``AmlCompute``) or raises ``ComputeTargetException``. Steps take the object or its
    name as ``compute_target``."""

    _compute_type: str | None = None

    def __new__(cls, workspace: Any = None, name: str = "local") -> ComputeTarget:
        if workspace is None:
            return super().__new__(cls)
        return _found(AmlCompute, workspace, name)

    def __init__(self, workspace: Any = None, name: str = "local") -> None:
        record: dict[str, Any] | None = self.__dict__.pop("_record", None)
        self.workspace = workspace
        self.name = name
        self.type = AML_COMPUTE if record is not None else self._compute_type
        self.pipesched_type: str | None = record["type"] if record else None
        self.max_workers: int | None = record.get("max_workers") if record else None
        self.location = "local"
        self.tags: dict[str, str] = {}
        self.description: str | None = None
        self.provisioning_state = PROVISIONED
        self.provisioning_errors: list[Any] | None = None
        self.is_attached = False
        self.id = f"compute/{self.name}"

    # -- finding and creating --------------------------------------------------------------

    @staticmethod
    def create(workspace: Any, name: str, provisioning_configuration: Any) -> ComputeTarget:
        """A configured target: returned, its provisioning configuration ignored with a
        warning. Any other name is refused with the config lines that declare it."""
        if name in configured_targets(workspace):
            ignored(
                "ComputeTarget.create",
                "provisioning_configuration",
                "compute targets are declared in pipesched.yaml, not provisioned",
            )
            return AmlCompute(workspace, name)
        raise _not_declared(workspace, name, provisioning_configuration)

    @staticmethod
    def list(workspace: Any) -> builtins.list[ComputeTarget]:
        """Every target of the config, in its order."""
        return [
            target_of(workspace, name, record)
            for name, record in configured_targets(workspace).items()
        ]

    # -- state -----------------------------------------------------------------------------

    def wait_for_completion(
        self,
        show_output: bool = False,
        min_node_count: int | None = None,
        timeout_in_minutes: int = 25,
        is_delete_operation: bool = False,
    ) -> None:
        """Nothing to provision: returns at once (with ``show_output``, says so)."""
        if show_output:
            print(PROVISIONED)
            print(
                f"{self.name}: pipesched compute target ({self._describe()}), declared in "
                "pipesched.yaml: nothing to provision"
            )

    def get_status(self) -> AmlComputeStatus:
        """Azure's cluster status, as this target's settings give it: provisioned, steady, up
        to ``max_workers`` steps at once (a node here is a worker slot)."""
        return AmlComputeStatus(self.max_workers)

    def refresh_state(self) -> None:
        """A target's settings change with the config only: nothing to refresh."""

    def serialize(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "location": self.location,
            "tags": self.tags,
            "properties": {
                "computeType": self.type,
                "description": self.description,
                "provisioningState": self.provisioning_state,
                "provisioningErrors": self.provisioning_errors,
                "status": self.get_status().serialize(),
                "pipeschedType": self.pipesched_type,
                "maxWorkers": self.max_workers,
            },
        }

    def get(self) -> dict[str, Any]:
        return self.serialize()

    def delete(self) -> None:
        raise _managed_in_config("delete", self.name)

    def detach(self) -> None:
        raise _managed_in_config("detach", self.name)

    def update(self, *args: Any, **kwargs: Any) -> None:
        raise _managed_in_config("update", self.name)

    def _describe(self) -> str:
        kind = self.pipesched_type or "unknown type"
        return f"{kind}, max_workers {self.max_workers}" if self.max_workers else kind

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(workspace={self.workspace!r}, name={self.name}, "
            f"type={self.type}, pipesched_type={self.pipesched_type}, "
            f"provisioning_state={self.provisioning_state}, location={self.location})"
        )


class AmlCompute(ComputeTarget):
    """Azure's AmlCompute cluster: every target of the config is one here."""

    _compute_type = AML_COMPUTE

    def __new__(cls, workspace: Any = None, name: str = "local") -> AmlCompute:
        if workspace is None:
            return object.__new__(cls)
        return _found(cls, workspace, name)

    @staticmethod
    def provisioning_configuration(
        vm_size: str = "",
        vm_priority: str = "dedicated",
        min_nodes: int = 0,
        max_nodes: int | None = None,
        idle_seconds_before_scaledown: int = 1800,
        admin_username: str | None = None,
        admin_user_password: str | None = None,
        admin_user_ssh_key: str | None = None,
        vnet_resourcegroup_name: str | None = None,
        vnet_name: str | None = None,
        subnet_name: str | None = None,
        tags: dict[str, str] | None = None,
        description: str | None = None,
        remote_login_port_public_access: str = "NotSpecified",
        identity_type: str | None = None,
        identity_id: list[str] | None = None,
        location: str | None = None,
        enable_node_public_ip: bool = True,
    ) -> AmlComputeProvisioningConfiguration:
        """Accepted and kept: ``ComputeTarget.create`` ignores it for a configured target, and
        suggests ``max_nodes`` as ``max_workers`` for one the config lacks."""
        return AmlComputeProvisioningConfiguration(
            vm_size=vm_size,
            vm_priority=vm_priority,
            min_nodes=min_nodes,
            max_nodes=max_nodes,
            idle_seconds_before_scaledown=idle_seconds_before_scaledown,
            tags=tags,
            description=description,
            location=location,
        )


class AmlComputeProvisioningConfiguration:
    """What Azure would provision; nothing is provisioned here."""

    def __init__(self, **settings: Any) -> None:
        self.__dict__.update(settings)
        self.max_nodes: int | None = settings.get("max_nodes")

    def __repr__(self) -> str:
        return f"AmlComputeProvisioningConfiguration(vm_size={self.__dict__.get('vm_size')!r})"


class AmlComputeStatus:
    """Azure's cluster status shape (``serialize()`` gives its JSON keys)."""

    def __init__(self, max_workers: int | None) -> None:
        self.provisioning_state = PROVISIONED
        self.allocation_state = "Steady"
        self.current_node_count = max_workers
        self.target_node_count = max_workers
        self.errors: list[Any] | None = None
        self.vm_priority = "dedicated"
        self.vm_size: str | None = None
        self.scale_settings = {
            "minNodeCount": 0,
            "maxNodeCount": max_workers,
            "nodeIdleTimeBeforeScaleDown": "",
        }

    def serialize(self) -> dict[str, Any]:
        return {
            "currentNodeCount": self.current_node_count,
            "targetNodeCount": self.target_node_count,
            "nodeStateCounts": None,
            "allocationState": self.allocation_state,
            "allocationStateTransitionTime": None,
            "errors": self.errors,
            "creationTime": None,
            "modifiedTime": None,
            "provisioningState": self.provisioning_state,
            "provisioningStateTransitionTime": None,
            "scaleSettings": self.scale_settings,
            "vmPriority": self.vm_priority,
            "vmSize": self.vm_size,
        }


def _found(cls: type[AmlCompute], workspace: Any, name: str) -> AmlCompute:
    """A new, not yet initialised target of the config, holding its record for ``__init__``
    (so the workspace is asked once), or ComputeTargetException."""
    record = configured_targets(workspace).get(name)
    if record is None:
        raise _not_found(workspace, name)
    target = object.__new__(cls)
    target.__dict__["_record"] = record
    return target


def target_of(workspace: Any, name: str, record: dict[str, Any]) -> AmlCompute:
    """The target ``name`` from a record already read (``ws.compute_targets`` reads them all
    at once rather than once per name)."""
    target = object.__new__(AmlCompute)
    target.__dict__["_record"] = record
    target.__init__(workspace, name)  # type: ignore[misc]
    return target


def _where(workspace: Any) -> tuple[str, str]:
    """Which config file declares the workspace's targets, and what makes a change count."""
    backend = getattr(workspace, "_backend", None)
    path = getattr(backend, "config_path", None)
    if path is not None:
        return str(path), "then run Workspace.from_config() again"
    if getattr(workspace, "_config", None) is not None:
        return "pipesched.yaml", "then run Workspace.from_config() again"
    return "the daemon's pipesched.yaml", "then restart the daemon: systemctl restart pipesched"


def _not_found(workspace: Any, name: str) -> ComputeTargetException:
    names = ", ".join(configured_targets(workspace)) or "none"
    where, _ = _where(workspace)
    return ComputeTargetException(
        f"ComputeTargetNotFound: Compute Target with name {name} not found in provided "
        f"workspace (the compute targets of {where}: {names})",
        hint="compute targets are declared under compute: in pipesched.yaml",
    )


def _not_declared(workspace: Any, name: str, configuration: Any) -> ComputeTargetException:
    max_nodes = getattr(configuration, "max_nodes", None)
    workers = max_nodes if isinstance(max_nodes, int) and max_nodes > 0 else 4
    where, then = _where(workspace)
    reserved = f" ('{name}' is reserved on Azure too)" if name in _RESERVED else ""
    return ComputeTargetException(
        f"ComputeTarget.create: compute target '{name}' is not declared in {where}, and "
        f"pipesched does not provision compute{reserved}. Add it under compute:\n\n"
        f"compute:\n"
        f"  {name}: {{type: local, max_workers: {workers}}}\n"
        f'  # or a Dask cluster: {name}: {{type: dask, address: "tcp://scheduler-host:8786"}}\n',
        hint=then,
    )


def _managed_in_config(action: str, name: str) -> ComputeTargetException:
    return ComputeTargetException(
        f"ComputeTarget.{action}: compute target '{name}' is declared in pipesched.yaml; "
        "change it there",
        hint=f"edit or remove compute: {name} in pipesched.yaml",
    )
