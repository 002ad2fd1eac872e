"""The SDK through a daemon's REST API (``Workspace(url=..., token=...)``).

Every call goes through the services' ``RemoteClient`` (the standard library's ``http.client``:
httpx is not a runtime dependency), which carries the bearer token and turns the daemon's
answers into the user errors the embedded backend raises, with the daemon's words. Only the
SDK's own wording of an unreachable daemon or a refused token is added here.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import os
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from scheduler.core.errors import PipeschedError
from scheduler.core.pathnames import escape_name
from scheduler.sdk._warn import SdkError
from scheduler.services.daemon_http import DaemonUnreachable, RemoteClient, TokenRefused
from scheduler.services.datastores import CHUNK, DatastoreEntry, write_local

TIMEOUT = 60.0
PAGE = 1000  # the API's largest page of runs


class RemoteBackend:
    """``Backend`` over ``url`` (the daemon's API origin, e.g. ``http://host:8790``)."""

    def __init__(self, url: str, token: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SdkError(f"not an http(s) URL: {url!r}", hint="e.g. http://127.0.0.1:8790")
        self.client = RemoteClient(url, token, timeout=TIMEOUT)
        self.origin = self.client.origin
        self.token = token

    # -- HTTP ---------------------------------------------------------------------------------

    def _json(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        data: bytes | None = None,
        content_type: str | None = None,
    ) -> Any:
        with _sdk_errors():
            return self.client.request(
                method, path, body=body, data=data, content_type=content_type
            )

    # -- workspace ----------------------------------------------------------------------------

    def describe(self) -> str:
        return f"url={self.origin!r}"

    def datastore_names(self) -> list[str]:
        return [entry["name"] for entry in self._json("GET", "/api/v1/datastores")]

    def compute_targets(self) -> list[dict[str, Any]]:
        return self._json("GET", "/api/v1/compute")

    def datastore_path(self, name: str) -> Path | None:
        return None

    def endpoint_url(self, pipeline: str, version: str | None) -> str:
        path = f"/api/v1/pipelines/{quote(pipeline, safe='')}"
        if version is not None:
            path += f"/versions/{quote(version, safe='')}"
        return f"{self.origin}{path}/runs"

    # -- datastore files ----------------------------------------------------------------------

    def put_datastore_file(
        self, datastore: str, path: str, source: Path, *, overwrite: bool
    ) -> bool:
        """One PUT per file, streamed from disk. A 409 without ``overwrite`` is a file that is
        there (False) when the folder's listing shows one; else the daemon's words."""
        url = _datastore_url(datastore, path) + ("?overwrite=true" if overwrite else "")
        status, raw = self._send_file(url, Path(source))
        if status < 400:
            return True
        if status == 409 and not overwrite:
            folder, _, name = path.rpartition("/")
            listed = self.list_datastore_folder(datastore, f"{folder}/" if folder else "")
            if any(entry.name == name and entry.kind == "file" for entry in listed):
                return False
        with _sdk_errors():
            raise self.client._failure(status, raw)

    def list_datastore_folder(self, datastore: str, path: str) -> list[DatastoreEntry]:
        answer = self._json("GET", _datastore_url(datastore, path))
        return [DatastoreEntry.from_json(entry) for entry in answer["entries"]]

    def get_datastore_file(self, datastore: str, path: str, target: Path) -> None:
        with _sdk_errors():
            chunks = self.client.stream(_datastore_url(datastore, path), timeout=TIMEOUT)
            write_local(Path(target), chunks)

    def _send_file(self, path: str, source: Path) -> tuple[int, bytes]:
        """PUT the bytes of ``source`` (never whole in memory); the answer's status and body.
        The daemon may answer before it has read them all (a 409, a 413) and close the
        connection: its answer is read all the same."""
        size = os.stat(source).st_size
        headers = {
            **self.client._headers(),
            "Content-Type": "application/octet-stream",
            "Content-Length": str(size),
        }
        connection = self.client._connection(TIMEOUT)
        try:
            with _sdk_errors():
                try:
                    connection.putrequest("PUT", path, skip_accept_encoding=True)
                    for key, value in headers.items():
                        connection.putheader(key, value)
                    connection.endheaders()
                    _send_exactly(connection, source, size)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # answered early: the answer says why
                except TimeoutError as exc:
                    raise self.client._timed_out("PUT", path, TIMEOUT) from exc
                except OSError as exc:
                    raise self.client._unreachable("PUT", path, exc) from exc
                try:
                    response = connection.getresponse()
                    return response.status, response.read()
                except (OSError, http.client.HTTPException) as exc:
                    raise PipeschedError(f"lost the connection to the daemon: {exc}") from exc
        finally:
            connection.close()

    # -- runs ---------------------------------------------------------------------------------

    def _upload(self, folder: Path) -> str:
        answer = self._json(
            "POST",
            "/api/v1/snapshots",
            data=_tar_gz(Path(folder)),
            content_type="application/gzip",
        )
        return answer["id"]

    def submit(
        self,
        folder: Path,
        *,
        experiment: str,
        parameters: dict[str, Any],
        regenerate_outputs: bool = False,
        continue_on_step_failure: bool | None = None,
    ) -> str:
        snapshot = self._upload(folder)
        body = _submit_body(experiment, parameters, continue_on_step_failure)
        if regenerate_outputs:
            body["RegenerateOutputs"] = True
        answer = self._json("POST", f"/api/v1/snapshots/{quote(snapshot, safe='')}/runs", body)
        return answer["Id"]

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
        path = urlsplit(self.endpoint_url(name, version)).path
        body = _submit_body(experiment, parameters, continue_on_step_failure)
        if regenerate_outputs:
            body["RegenerateOutputs"] = True
        answer = self._json("POST", path, body)
        return answer["Id"]

    def wait_for_change(self, run_id: str, timeout: float) -> None:
        """The REST API pushes no run events (step logs aside): wait the interval out."""
        time.sleep(timeout)

    def get_run(self, run_id: str) -> dict[str, Any]:
        return self._json("GET", f"/api/v1/runs/{quote(run_id, safe='')}")

    def list_runs(
        self, *, experiment: str | None = None, pipeline: str | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        """Newest first; ``limit`` 0 pages through every run."""
        found: list[dict[str, Any]] = []
        before = None
        while True:
            want = PAGE if limit == 0 else min(PAGE, limit - len(found))
            query = {"experiment": experiment, "pipeline": pipeline, "limit": want}
            query["before"] = before
            page = self._json("GET", "/api/v1/runs?" + _query(query))
            found.extend(page)
            if len(page) < want or (limit and len(found) >= limit):
                return found
            before = page[-1]["id"]

    def cancel_run(self, run_id: str) -> dict[str, Any]:
        return self._json("POST", f"/api/v1/runs/{quote(run_id, safe='')}/cancel")

    def step_log(self, run_id: str, step: str, *, follow: bool = False) -> Iterator[bytes]:
        path = f"/api/v1/runs/{quote(run_id, safe='')}/steps/{quote(step, safe='')}/logs"
        if follow:
            path += "?follow=true"
        # No read timeout while following: a quiet step may print nothing for a long time.
        with _sdk_errors():
            yield from self.client.stream(path, timeout=None if follow else TIMEOUT)

    # -- published pipelines ------------------------------------------------------------------

    def publish(
        self, folder: Path, *, name: str, version: str | None, description: str | None
    ) -> dict[str, Any]:
        snapshot = self._upload(folder)
        return self._json(
            "POST",
            f"/api/v1/pipelines/{quote(name, safe='')}/versions",
            {"snapshot": snapshot, "version": version, "description": description},
        )

    def publish_run(
        self, run_id: str, *, name: str, version: str | None, description: str | None
    ) -> dict[str, Any]:
        return self._json(
            "POST",
            f"/api/v1/runs/{quote(run_id, safe='')}/publish",
            {"name": name, "version": version, "description": description},
        )

    def list_published(self, name: str | None = None) -> list[dict[str, Any]]:
        versions = []
        for pipeline in self._json("GET", "/api/v1/pipelines"):
            if name is None or pipeline["name"] == name:
                versions.extend(pipeline["versions"])
        return versions

    def set_default_version(self, name: str, version: str) -> None:
        self._json("PUT", f"/api/v1/pipelines/{quote(name, safe='')}/default", {"version": version})

    # -- pipeline endpoints -------------------------------------------------------------------

    def endpoint_submit_url(self, endpoint_id: str) -> str:
        path = f"/api/v1/PipelineRuns/PipelineEndpointSubmit/Id/{quote(endpoint_id, safe='')}"
        return f"{self.origin}{path}"

    def list_endpoints(self) -> list[dict[str, Any]]:
        return self._json("GET", "/api/v1/endpoints")

    def add_endpoint_version(
        self, name: str, pipeline: str, version: str, *, create: bool, description: str | None
    ) -> dict[str, Any]:
        body = {"pipeline": pipeline, "version": version, "create": create}
        if description is not None:
            body["description"] = description
        return self._json("POST", f"/api/v1/endpoints/{quote(name, safe='')}/versions", body)

    def set_endpoint_default(self, name: str, pipeline: str, version: str) -> dict[str, Any]:
        body = {"pipeline": pipeline, "version": version}
        return self._json("PUT", f"/api/v1/endpoints/{quote(name, safe='')}/default", body)

    def rename_endpoint(self, name: str, new_name: str) -> dict[str, Any]:
        path = f"/api/v1/endpoints/{quote(name, safe='')}/name"
        return self._json("PUT", path, {"name": new_name})

    # -- schedules ----------------------------------------------------------------------------

    def create_schedule(self, definition: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", "/api/v1/schedules", definition)

    def list_schedules(self) -> list[dict[str, Any]]:
        return self._json("GET", "/api/v1/schedules")

    def get_schedule(self, name: str) -> dict[str, Any]:
        return self._json("GET", f"/api/v1/schedules/{quote(name, safe='')}")

    def set_schedule_enabled(self, name: str, enabled: bool) -> dict[str, Any]:
        action = "enable" if enabled else "disable"
        self._json("POST", f"/api/v1/schedules/{quote(name, safe='')}/{action}")
        return self.get_schedule(name)

    def update_schedule(self, name: str, definition: dict[str, Any]) -> dict[str, Any]:
        return self._json("PUT", f"/api/v1/schedules/{quote(name, safe='')}", definition)

    def delete_schedule(self, name: str) -> None:
        self._json("DELETE", f"/api/v1/schedules/{quote(name, safe='')}")

    # -- step outputs, pipeline drafts, modules -----------------------------------------------

    def step_outputs(self, run_id: str, step: str) -> list[dict[str, Any]]:
        path = f"/api/v1/runs/{quote(run_id, safe='')}/steps/{quote(step, safe='')}/outputs"
        return self._json("GET", path)

    def create_draft(
        self,
        source: dict[str, Any],
        fields: dict[str, Any],
        properties: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        if "folder" in source:
            source = {"snapshot": self._upload(Path(source["folder"]))}
        body = {**fields, "source": source}
        if properties:
            body["properties"] = properties
        return self._json("POST", "/api/v1/drafts", body)

    def list_drafts(self) -> list[dict[str, Any]]:
        return self._json("GET", "/api/v1/drafts")

    def get_draft(self, draft_id: str) -> dict[str, Any]:
        return self._json("GET", f"/api/v1/drafts/{quote(draft_id, safe='')}")

    def update_draft(
        self, draft_id: str, fields: dict[str, Any], folder: Path | None = None
    ) -> dict[str, Any]:
        if folder is not None:
            fields = {**fields, "snapshot": self._upload(Path(folder))}
        return self._json("PATCH", f"/api/v1/drafts/{quote(draft_id, safe='')}", fields)

    def delete_draft(self, draft_id: str) -> None:
        self._json("DELETE", f"/api/v1/drafts/{quote(draft_id, safe='')}")

    def submit_draft(self, draft_id: str) -> str:
        answer = self._json("POST", f"/api/v1/drafts/{quote(draft_id, safe='')}/runs")
        return answer["Id"]

    def publish_draft(self, draft_id: str) -> dict[str, Any]:
        return self._json("POST", f"/api/v1/drafts/{quote(draft_id, safe='')}/publish")

    def modules_dir(self) -> Path:
        """On this machine, per daemon: a module's files go with every pipeline that uses it
        (uploaded like any step's source), so the daemon never needs them on its own."""
        data = os.environ.get("XDG_DATA_HOME") or os.path.join(
            os.path.expanduser("~"), ".local", "share"
        )
        place = urlsplit(self.origin).netloc.replace(":", "_").replace("[", "").replace("]", "")
        return Path(data) / "pipesched" / "modules" / place


@contextlib.contextmanager
def _sdk_errors() -> Iterator[None]:
    """An unreachable daemon or a refused token as the SDK's own error, same words."""
    try:
        yield
    except (DaemonUnreachable, TokenRefused) as exc:
        raise SdkError(exc.message, hint=exc.hint) from None


def _submit_body(
    experiment: str | None, parameters: dict[str, Any], continue_on_step_failure: bool | None
) -> dict[str, Any]:
    """Azure ML's published-pipeline request body."""
    body: dict[str, Any] = {"ParameterAssignments": parameters}
    if experiment is not None:
        body["ExperimentName"] = experiment
    if continue_on_step_failure is not None:
        body["ContinueRunOnStepFailure"] = continue_on_step_failure
    return body


def _datastore_url(datastore: str, path: str) -> str:
    """The REST path of a datastore file or folder (a folder's ends in ``/``); names go as
    escaped text, so every byte a file name can hold gets there."""
    return (
        f"/api/v1/datastores/{quote(datastore, safe='')}/files/{quote(escape_name(path), safe='/')}"
    )


def _send_exactly(connection: http.client.HTTPConnection, source: Path, size: int) -> None:
    """The first ``size`` bytes of ``source``, as announced in Content-Length."""
    sent = 0
    with open(source, "rb") as handle:
        while sent < size:
            chunk = handle.read(min(CHUNK, size - sent))
            if not chunk:
                raise SdkError(f"{source} shrank while it was uploaded", hint="upload it again")
            connection.send(chunk)
            sent += len(chunk)


def _query(values: dict[str, Any]) -> str:
    return urlencode({k: v for k, v in values.items() if v is not None})


def _tar_gz(folder: Path) -> bytes:
    """The saved pipeline folder as a tar.gz under its own name (a pipeline.yaml without
    ``name:`` is named by its folder); regular files only, links followed."""
    top = folder.resolve().name
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", dereference=True) as archive:
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            for name in sorted(files):
                full = Path(root) / name
                if full.is_file():
                    archive.add(full, arcname=f"{top}/{full.relative_to(folder).as_posix()}")
    return buffer.getvalue()
