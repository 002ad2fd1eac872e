"""The SDK through a daemon's REST API (``Workspace(url=..., token=...)``).

urllib from the standard library: httpx is not a runtime dependency of pipesched, and these are
a handful of plain JSON calls plus one streamed log. Every call carries the bearer token; the
daemon's answers become the user errors the embedded backend raises, with the daemon's words.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from scheduler.core.errors import PipeschedError
from scheduler.sdk._warn import SdkError
from scheduler.services.client import _detail_text, error_for_status

TIMEOUT = 60.0
PAGE = 1000  # the API's largest page of runs
STREAM_CHUNK = 64 * 1024


class RemoteBackend:
    """``Backend`` over ``url`` (the daemon's API origin, e.g. ``http://host:8790``)."""

    def __init__(self, url: str, token: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SdkError(f"not an http(s) URL: {url!r}", hint="e.g. http://127.0.0.1:8790")
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.token = token

    # -- HTTP ---------------------------------------------------------------------------------

    def _open(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        data: bytes | None = None,
        content_type: str | None = None,
        timeout: float | None = TIMEOUT,
    ) -> Any:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if body is not None:
            data, content_type = json.dumps(body).encode(), "application/json"
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(
            self.origin + path, data=data, headers=headers, method=method
        )
        try:
            # The scheme is http(s): checked in __init__.
            return urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            raise self._error(exc) from None
        except urllib.error.URLError as exc:
            raise SdkError(
                f"cannot reach the pipesched daemon at {self.origin}: {exc.reason}",
                hint="is it running? see: systemctl status pipesched",
            ) from None
        except TimeoutError:
            raise SdkError(f"the daemon at {self.origin} did not answer {method} {path}") from None

    def _error(self, exc: urllib.error.HTTPError) -> PipeschedError:
        raw = exc.read()
        try:
            detail = json.loads(raw).get("detail")
        except (ValueError, AttributeError):
            detail = raw.decode(errors="replace") or None
        if exc.code == 401:
            return SdkError(
                f"token refused by {self.origin}",
                hint="create one with: pipesched token create NAME",
            )
        message = _detail_text(detail) or f"the daemon answered {exc.code} {exc.reason}"
        return error_for_status(exc.code, message, detail)

    def _json(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        with self._open(method, path, body=body, **kwargs) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    # -- workspace ----------------------------------------------------------------------------

    def describe(self) -> str:
        return f"url={self.origin!r}"

    def datastore_names(self) -> list[str]:
        return ["default"]  # the API does not list datastores; every config has a default

    def datastore_path(self, name: str) -> Path | None:
        return None

    def endpoint_url(self, pipeline: str, version: str | None) -> str:
        path = f"/api/v1/pipelines/{quote(pipeline, safe='')}"
        if version is not None:
            path += f"/versions/{quote(version, safe='')}"
        return f"{self.origin}{path}/runs"

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
        with self._open("GET", path, timeout=None if follow else TIMEOUT) as response:
            while chunk := response.read1(STREAM_CHUNK):
                yield chunk

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

    def delete_schedule(self, name: str) -> None:
        self._json("DELETE", f"/api/v1/schedules/{quote(name, safe='')}")


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
