"""Azure ML's ``Datastore``: here a named folder from the daemon config's ``datastores``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from scheduler.sdk._warn import SdkError, refused
from scheduler.sdk.datapath import DataPath, DataReference

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


def _register_refused(method: str) -> SdkError:
    """The refusal of one of Azure's ``register_*`` methods, naming that method."""
    return refused(
        "Datastore",
        method,
        "datastores are local or shared folders declared in pipesched.yaml",
        hint="add  datastores: {NAME: {path: /some/folder}}  to the config",
    )
