"""What the SDK's objects ask of pipesched, whichever way it is reached: ``EmbeddedBackend``
(a config file on this machine: the store directly, runs in a child process) or
``RemoteBackend`` (a daemon's REST API, URL + token). Both speak the JSON shapes of the CLI and REST API
(``runs --json``, ``show --json``, ``schedules --json``), so the run, pipeline and schedule
objects never know which one they hold."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from scheduler.services.datastores import DatastoreEntry


class Backend(Protocol):
    # -- workspace ----------------------------------------------------------------------------
    def describe(self) -> str:
        """One line for repr(): the config file or the daemon URL."""

    def datastore_names(self) -> list[str]: ...

    def compute_targets(self) -> list[dict[str, Any]]:
        """The config's compute targets: ``{"name", "type", "max_workers"}`` each."""

    def datastore_path(self, name: str) -> Path | None:
        """The local folder of a datastore; None when the daemon is remote."""

    def endpoint_url(self, pipeline: str, version: str | None) -> str:
        """The absolute run URL of a published pipeline (or its endpoint when None)."""

    # -- datastore files ----------------------------------------------------------------------
    # Paths are from the datastore's root, ``/``-separated ``os.fsdecode`` text.
    def put_datastore_file(
        self, datastore: str, path: str, source: Path, *, overwrite: bool
    ) -> bool:
        """Copy the local file ``source`` to ``path``; False (nothing written) when a file is
        there and ``overwrite`` is False."""

    def list_datastore_folder(self, datastore: str, path: str) -> list[DatastoreEntry]:
        """The files and folders in the folder ``path`` ("" for the root), one level."""

    def get_datastore_file(self, datastore: str, path: str, target: Path) -> None:
        """Copy the datastore file ``path`` to the local file ``target``, replacing it."""

    # -- runs ---------------------------------------------------------------------------------
    def submit(
        self,
        folder: Path,
        *,
        experiment: str,
        parameters: dict[str, Any],
        regenerate_outputs: bool = False,
        continue_on_step_failure: bool | None = None,
    ) -> str:
        """Run the pipeline saved in ``folder`` (Pipeline.save's output); return the run id once
        the run is recorded. Bad parameters raise before anything is recorded."""

    def submit_published(
        self,
        name: str,
        version: str | None,
        *,
        experiment: str | None,
        parameters: dict[str, Any],
        continue_on_step_failure: bool | None = None,
        regenerate_outputs: bool = False,
    ) -> str:
        """Run a published version (None: the endpoint's default); return the run id."""

    def get_run(self, run_id: str) -> dict[str, Any]:
        """The ``show --json`` object (a unique prefix is accepted)."""

    def list_runs(
        self, *, experiment: str | None = None, pipeline: str | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        """``runs --json`` objects, newest first."""

    def cancel_run(self, run_id: str) -> dict[str, Any]: ...

    def wait_for_change(self, run_id: str, timeout: float) -> None:
        """Sleep up to ``timeout``, returning early when the run may have changed."""

    def step_log(self, run_id: str, step: str, *, follow: bool = False) -> Iterator[bytes]:
        """A step's output (latest attempt), as chunks; with ``follow``, until the step ends."""

    # -- published pipelines ------------------------------------------------------------------
    def publish(
        self, folder: Path, *, name: str, version: str | None, description: str | None
    ) -> dict[str, Any]:
        """Publish the pipeline saved in ``folder`` as ``name``; the PublishedVersion JSON plus
        ``endpoint``."""

    def publish_run(
        self, run_id: str, *, name: str, version: str | None, description: str | None
    ) -> dict[str, Any]:
        """Publish the definition a finished run ran."""

    def list_published(self, name: str | None = None) -> list[dict[str, Any]]: ...

    def set_default_version(self, name: str, version: str) -> None: ...

    # -- pipeline endpoints (versions numbered "0", "1"...) ------------------------------------
    def list_endpoints(self) -> list[dict[str, Any]]:
        """Every endpoint: ``{id, name, description, default_version, endpoint, versions:
        [{version, pipeline, pipeline_version, pipeline_id}]}``."""

    def add_endpoint_version(
        self, name: str, pipeline: str, version: str, *, create: bool, description: str | None
    ) -> dict[str, Any]:
        """Add published ``pipeline@version`` to endpoint ``name``; the endpoint."""

    def set_endpoint_default(self, name: str, pipeline: str, version: str) -> dict[str, Any]: ...

    def rename_endpoint(self, name: str, new_name: str) -> dict[str, Any]: ...

    def endpoint_submit_url(self, endpoint_id: str) -> str:
        """Azure's URL form that runs an endpoint's default version (``+ "/" + N``: version N)."""

    # -- schedules ----------------------------------------------------------------------------
    def create_schedule(self, definition: dict[str, Any]) -> dict[str, Any]:
        """Create an API schedule from a schedules.yaml entry (as JSON); the ``schedules --json``
        object of it."""

    def list_schedules(self) -> list[dict[str, Any]]: ...

    def get_schedule(self, name: str) -> dict[str, Any]: ...

    def set_schedule_enabled(self, name: str, enabled: bool) -> dict[str, Any]: ...

    def update_schedule(self, name: str, definition: dict[str, Any]) -> dict[str, Any]:
        """Replace an API schedule's definition (its ``name`` may differ: a rename); the
        ``schedules --json`` object of it, which keeps its ``id``."""

    def delete_schedule(self, name: str) -> None: ...

    # -- step outputs, pipeline drafts, modules -----------------------------------------------
    def step_outputs(self, run_id: str, step: str) -> list[dict[str, Any]]:
        """A step's outputs: ``name``, ``path``, ``datastore_name``, ``path_on_datastore``
        (the machine that ran the step knows its datastores)."""

    def create_draft(
        self,
        source: dict[str, Any],
        fields: dict[str, Any],
        properties: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """A new pipeline draft of ``source``: ``{"folder": Path}`` (a saved pipeline),
        ``{"run": ID}``, ``{"pipeline": NAME, "version": LABEL}`` or ``{"draft": ID}``; the
        draft's JSON (``scheduler.services.drafts.Draft``)."""

    def list_drafts(self) -> list[dict[str, Any]]: ...

    def get_draft(self, draft_id: str) -> dict[str, Any]: ...

    def update_draft(
        self, draft_id: str, fields: dict[str, Any], folder: Path | None = None
    ) -> dict[str, Any]:
        """Change the fields given; ``folder`` (a saved pipeline) becomes the draft's pipeline."""

    def delete_draft(self, draft_id: str) -> None: ...

    def submit_draft(self, draft_id: str) -> str:
        """Run the draft's pipeline with its settings; the run id."""

    def publish_draft(self, draft_id: str) -> dict[str, Any]:
        """The PublishedVersion JSON (plus ``endpoint``) of the draft's pipeline."""

    def modules_dir(self) -> Path:
        """Where this workspace's modules (``scheduler.sdk.modules``) are kept."""
