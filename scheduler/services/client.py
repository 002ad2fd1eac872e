"""The CLI's side of the daemon's unix socket: plain HTTP over AF_UNIX with the stdlib.

Stdlib only (http.client), so commands that talk to the daemon start fast and add no
dependency. Errors come back as PipeschedError carrying the daemon's own ``detail``.
"""

from __future__ import annotations

import http.client
import json
import socket
import stat
from pathlib import Path
from typing import Any

from scheduler.core.errors import NotFound, ParameterError, PipeschedError

SOCKET_NAME = "pipesched.sock"
PROBE_TIMEOUT = 1.0
# A cancel waits for step processes to stop (SIGTERM, SIGKILL after a grace): allow for it.
REQUEST_TIMEOUT = 60.0


def socket_path(state_dir: Path) -> Path:
    """Where the daemon of ``state_dir`` listens (``<state_dir>/pipesched.sock``)."""
    return Path(state_dir) / SOCKET_NAME


class DaemonNotRunning(PipeschedError):
    """the daemon is not running"""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, hint="start it with: pipesched daemon")


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self._path))
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class DaemonClient:
    """Requests to the daemon listening on ``socket_path``."""

    def __init__(self, socket_path: Path, *, timeout: float = REQUEST_TIMEOUT) -> None:
        self.socket_path = Path(socket_path)
        self.timeout = timeout

    def available(self) -> bool:
        """True when the socket exists and ``/healthz`` answers within about a second."""
        try:
            if not stat.S_ISSOCK(self.socket_path.stat().st_mode):
                return False
            self._request("GET", "/healthz", timeout=PROBE_TIMEOUT)
        except (PipeschedError, OSError):
            return False
        return True

    def health(self) -> dict[str, Any]:
        return self.get("/healthz")

    def get(self, path: str) -> Any:
        return self._request("GET", path)

    def post(self, path: str, json_body: Any = None) -> Any:
        """POST, with ``json_body`` sent as JSON when given (no body otherwise, as before)."""
        return self._request("POST", path, body=json_body)

    def put(self, path: str, json_body: Any = None) -> Any:
        return self._request("PUT", path, body=json_body)

    def delete(self, path: str) -> Any:
        return self._request("DELETE", path)

    def _request(
        self, method: str, path: str, *, timeout: float | None = None, body: Any = None
    ) -> Any:
        connection = _UnixConnection(self.socket_path, timeout or self.timeout)
        headers = {"Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            try:
                connection.request(method, path, body=payload, headers=headers)
                response = connection.getresponse()
                body = response.read()
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                raise DaemonNotRunning() from exc
            except TimeoutError as exc:
                raise PipeschedError(
                    f"the daemon did not answer {method} {path} within {connection.timeout:g}s"
                ) from exc
            except (OSError, http.client.HTTPException) as exc:
                raise PipeschedError(f"lost the connection to the daemon: {exc}") from exc
        finally:
            connection.close()
        data = _decode(body)
        if response.status >= 400:
            detail = data.get("detail") if isinstance(data, dict) else None
            message = _detail_text(detail) or f"the daemon answered {response.status}"
            raise error_for_status(response.status, message, detail)
        return data


class InvalidRequest(PipeschedError):
    """The daemon refused the request as invalid (422)."""


def error_for_status(status: int, message: str, detail: Any = None) -> PipeschedError:
    """The user error a daemon's answer stands for, carrying its own words: 404 → NotFound, a
    422 about a run parameter → ParameterError (naming it), anything else → PipeschedError."""
    if status == 404:
        return NotFound(message)
    if status == 422 and isinstance(detail, list):
        for item in detail:
            if isinstance(item, dict) and item.get("type") == "parameter_error":
                loc = item.get("loc") or [""]
                return ParameterError(str(item.get("msg")), name=str(loc[-1]))
    return (InvalidRequest if status == 422 else PipeschedError)(message)


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return body.decode(errors="replace")


def _detail_text(detail: Any) -> str | None:
    """FastAPI's 422 detail is a list of problems: name each field."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                where = ".".join(str(p) for p in item.get("loc", ()) if p != "query")
                parts.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
        return "; ".join(parts) or None
    return None
