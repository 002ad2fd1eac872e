"""HTTP to a running daemon: over its unix socket, or to its URL with a bearer token.

``DaemonClient`` speaks plain HTTP over the daemon's unix socket (``<state_dir>/pipesched.sock``,
no token: the socket's mode is the guard); ``RemoteClient`` speaks to a daemon's URL with a bearer
token. Both raise the daemon's own words as user errors (404 → NotFound, a bad run parameter →
ParameterError naming it, anything else → PipeschedError). Standard library only (``http.client``),
so a command that asks the daemon starts fast.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from scheduler.core.errors import NotFound, ParameterError, PipeschedError
from scheduler.core.socketpath import socket_address

SOCKET_NAME = "pipesched.sock"
PROBE_TIMEOUT = 1.0
# A cancel waits for step processes to stop (SIGTERM, SIGKILL after a grace): allow for it.
REQUEST_TIMEOUT = 60.0
STREAM_CHUNK = 64 * 1024
API = "/api/v1"


def socket_path(state_dir: Path) -> Path:
    """Where the daemon of ``state_dir`` listens (``<state_dir>/pipesched.sock``)."""
    return Path(state_dir) / SOCKET_NAME


class DaemonNotRunning(PipeschedError):
    """the daemon is not running"""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, hint="start it with: pipesched daemon")


class DaemonUnreachable(PipeschedError):
    """The daemon at a URL does not answer."""


class TokenRefused(PipeschedError):
    """The daemon at a URL refused the API token (401)."""


class InvalidRequest(PipeschedError):
    """The daemon refused the request as invalid (422)."""


# -- transport ------------------------------------------------------------------------------------


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            with socket_address(self._path) as address:
                sock.connect(address)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class _Client:
    """JSON requests to a daemon; subclasses say how to connect and what a failure means."""

    timeout: float

    def _connection(self, timeout: float | None) -> http.client.HTTPConnection:
        raise NotImplementedError

    def _headers(self) -> dict[str, str]:
        return {"Accept": "application/json"}

    def _unreachable(self, method: str, path: str, exc: OSError) -> PipeschedError:
        raise NotImplementedError

    def _timed_out(self, method: str, path: str, timeout: float | None) -> PipeschedError:
        return PipeschedError(f"the daemon did not answer {method} {path} within {timeout or 0:g}s")

    def _refused(self, status: int, detail: Any) -> PipeschedError | None:
        """A failure this kind of client words itself (None: the daemon's own words)."""
        return None

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, json_body: Any = None) -> Any:
        """POST, with ``json_body`` sent as JSON when given (no body otherwise)."""
        return self.request("POST", path, body=json_body)

    def put(self, path: str, json_body: Any = None) -> Any:
        return self.request("PUT", path, body=json_body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        data: bytes | None = None,
        content_type: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """One request; the decoded JSON answer (None for an empty one)."""
        with self._open(method, path, body, data, content_type, timeout or self.timeout) as answer:
            return _decode(answer.read())

    def stream(self, path: str, *, timeout: float | None) -> Iterator[bytes]:
        """A GET whose body is read in chunks as it arrives (``timeout`` None: wait forever)."""
        with self._open("GET", path, None, None, None, timeout) as answer:
            while chunk := answer.read1(STREAM_CHUNK):
                yield chunk

    @contextlib.contextmanager
    def _open(
        self,
        method: str,
        path: str,
        body: Any,
        data: bytes | None,
        content_type: str | None,
        timeout: float | None,
    ) -> Iterator[http.client.HTTPResponse]:
        headers = self._headers()
        if body is not None:
            data, content_type = json.dumps(body).encode(), "application/json"
        if content_type:
            headers["Content-Type"] = content_type
        connection = self._connection(timeout)
        try:
            try:
                connection.request(method, path, body=data, headers=headers)
                response = connection.getresponse()
            except TimeoutError as exc:
                raise self._timed_out(method, path, timeout) from exc
            except OSError as exc:
                raise self._unreachable(method, path, exc) from exc
            except http.client.HTTPException as exc:
                raise PipeschedError(f"lost the connection to the daemon: {exc}") from exc
            if response.status >= 400:
                raise self._failure(response.status, response.read())
            yield response
        finally:
            connection.close()

    def _failure(self, status: int, raw: bytes) -> PipeschedError:
        data = _decode(raw)
        detail = data.get("detail") if isinstance(data, dict) else data
        own = self._refused(status, detail)
        if own is not None:
            return own
        message = _detail_text(detail) or f"the daemon answered {status}"
        return error_for_status(status, message, detail)


class _Unhealthy(PipeschedError):
    """A 503 answer: the daemon is up but cannot do its work (the reason in ``answer``)."""

    def __init__(self, answer: Any) -> None:
        detail = answer.get("detail") if isinstance(answer, dict) else None
        if isinstance(detail, str):  # a standby naming the leader: its words are the message
            super().__init__(detail)
        else:
            reason = answer.get("reason") if isinstance(answer, dict) else None
            super().__init__(f"the daemon cannot do its work: {reason or answer}")
        self.answer = answer


class DaemonClient(_Client):
    """Requests to the daemon listening on ``socket_path``."""

    def __init__(self, socket_path: Path, *, timeout: float = REQUEST_TIMEOUT) -> None:
        self.socket_path = Path(socket_path)
        self.timeout = timeout

    def available(self) -> bool:
        """True when the socket exists and ``/healthz`` answers within about a second."""
        try:
            if not stat.S_ISSOCK(self.socket_path.stat().st_mode):
                return False
            self._healthz(PROBE_TIMEOUT)
        except (PipeschedError, OSError):
            return False
        return True

    def health(self) -> dict[str, Any]:
        """The daemon's ``/healthz`` answer, also while it is unhealthy (503: its store cannot
        be written): the daemon is there all the same."""
        return self._healthz(None)

    def _healthz(self, timeout: float | None) -> dict[str, Any]:
        try:
            answer = self.request("GET", "/healthz", timeout=timeout)
        except _Unhealthy as exc:
            answer = exc.answer
        return answer if isinstance(answer, dict) else {}

    def _failure(self, status: int, raw: bytes) -> PipeschedError:
        if status == 503:
            return _Unhealthy(_decode(raw))
        return super()._failure(status, raw)

    def _connection(self, timeout: float | None) -> http.client.HTTPConnection:
        return _UnixConnection(self.socket_path, timeout)

    def _unreachable(self, method: str, path: str, exc: OSError) -> PipeschedError:
        if isinstance(exc, FileNotFoundError | ConnectionRefusedError):
            return DaemonNotRunning()
        return PipeschedError(f"lost the connection to the daemon: {exc}")


class RemoteClient(_Client):
    """Requests to the daemon at ``url`` (its API origin, e.g. ``http://host:8790``), each with
    the bearer ``token``."""

    def __init__(self, url: str, token: str, *, timeout: float = REQUEST_TIMEOUT) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or not parts.hostname:
            raise PipeschedError(f"not an http(s) URL: {url!r}", hint="e.g. http://127.0.0.1:8790")
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self._host, self._port = parts.hostname, parts.port
        self._https = parts.scheme == "https"
        self.token = token
        self.timeout = timeout

    def _connection(self, timeout: float | None) -> http.client.HTTPConnection:
        if self._https:
            context = ssl.create_default_context()
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=timeout, context=context
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def _headers(self) -> dict[str, str]:
        return {**super()._headers(), "Authorization": f"Bearer {self.token}"}

    def _unreachable(self, method: str, path: str, exc: OSError) -> PipeschedError:
        reason = exc.strerror or exc
        return DaemonUnreachable(
            f"cannot reach the pipesched daemon at {self.origin}: {reason}",
            hint="is it running? see: systemctl status pipesched",
        )

    def _timed_out(self, method: str, path: str, timeout: float | None) -> PipeschedError:
        return DaemonUnreachable(f"the daemon at {self.origin} did not answer {method} {path}")

    def _refused(self, status: int, detail: Any) -> PipeschedError | None:
        if status == 401:
            return TokenRefused(
                f"token refused by {self.origin}",
                hint="create one with: pipesched token create NAME",
            )
        return None


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


def run_path(run_id: str, action: str = "") -> str:
    return f"{API}/runs/{quote(run_id, safe='')}" + (f"/{action}" if action else "")


def schedule_path(name: str, action: str = "") -> str:
    return f"{API}/schedules/{quote(name, safe='')}" + (f"/{action}" if action else "")
