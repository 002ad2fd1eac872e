"""Web sessions: a login form exchanges an API token for a signed session cookie, so a browser
never holds the token itself and no token ever appears in a URL.

The cookie is signed with itsdangerous (the library Flask and Starlette sign sessions with),
keyed by a random secret in the state folder (mode 0600, made on first use), and carries the
token's public id, a per-session CSRF token and its time of issue. Each page looks the token up
by id: revoking the token ends every session made from it, and deleting the key file ends them
all. Sessions outlive a daemon restart, since the key is on disk.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from scheduler.core.errors import PipeschedError
from scheduler.services.tokens import live_token, token_still_live

if TYPE_CHECKING:
    from scheduler.store import Store

SESSION_COOKIE = "pipesched_session"
SESSION_SECONDS = 12 * 3600
KEY_FILE = "web-session.key"
_SALT = "pipesched web session"
MAX_COOKIE = 1024  # a session cookie is about 150 bytes; anything far longer is not ours


@dataclass(frozen=True)
class WebSession:
    """A logged-in browser: the token it logged in with (by name and id) and its CSRF token."""

    token_name: str
    token_id: str
    csrf: str

    def csrf_matches(self, presented: str | None) -> bool:
        """Whether a form or header carried this session's CSRF token (constant time)."""
        return bool(presented) and hmac.compare_digest(self.csrf, presented or "")


class WebSessions:
    """Issues and checks session cookies for one store and state folder."""

    def __init__(self, store: Store, state_dir: Path, *, max_age: int = SESSION_SECONDS) -> None:
        self._store = store
        self.max_age = max_age
        self._signer = URLSafeTimedSerializer(_session_key(state_dir), salt=_SALT)

    def log_in(self, token: str) -> str | None:
        """A new session cookie's value for a live token, else None."""
        found = live_token(self._store, token.strip())
        if found is None:
            return None
        token_id, _ = found
        return self._signer.dumps({"t": token_id, "c": secrets.token_urlsafe(24)})

    def check(self, cookie: str | None) -> WebSession | None:
        """The session a cookie holds: None when it is missing, forged, expired, or its token
        has been revoked."""
        if not cookie or len(cookie) > MAX_COOKIE:
            return None
        try:
            data: Any = self._signer.loads(cookie, max_age=self.max_age)
        except BadSignature:  # also an expired one (SignatureExpired is a BadSignature)
            return None
        if not isinstance(data, dict):
            return None
        token_id, csrf = data.get("t"), data.get("c")
        if not isinstance(token_id, str) or not isinstance(csrf, str):
            return None
        name = token_still_live(self._store, token_id)
        return None if name is None else WebSession(name, token_id, csrf)


def _session_key(state_dir: Path) -> bytes:
    """The signing key, made once (0600, written whole before it is visible) and then read."""
    path = Path(state_dir) / KEY_FILE
    with contextlib.suppress(FileNotFoundError):
        return _read_key(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{KEY_FILE}.{os.getpid()}")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_hex(32))
    try:
        os.link(partial, path)  # fails if another process made the key first: use theirs
    except FileExistsError:
        pass
    finally:
        partial.unlink()
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    key = path.read_text().strip()
    if len(key) < 32:
        raise PipeschedError(
            f"{path} is too short to be a session key", hint="delete it: a new one is made"
        )
    return key.encode()
