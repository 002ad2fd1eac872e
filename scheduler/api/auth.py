"""Bearer tokens on the TCP listener: every ``/api/`` path needs ``Authorization: Bearer <token>``.

FastAPI's ``HTTPBearer`` parses the header and puts the scheme into the OpenAPI document (so
``/docs`` and schemathesis know how to authenticate); we call it with ``auto_error=False`` because
its own failure is a 403 for a missing header, while a client expects 401 with ``WWW-Authenticate:
Bearer`` for missing, wrong and revoked alike. The comparison itself (hash, constant time) is
``scheduler.services.tokens.verify_token``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from scheduler.services.tokens import verify_token

if TYPE_CHECKING:
    from scheduler.store import Store

_bearer = HTTPBearer(auto_error=False, description="A token from `pipesched token create NAME`.")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=message,
        headers={"WWW-Authenticate": "Bearer"},
    )


def token_dependency(store: Store, *, require_token: bool) -> Callable[..., str | None]:
    """A dependency that answers 401 unless the request carries a live token; it returns the
    token's name (None on the unix socket, where the file's permissions are the guard)."""
    if not require_token:

        def no_token() -> str | None:
            return None

        return no_token

    # A plain def: the lookup is a database read, which FastAPI runs in its thread pool.
    def bearer_token(credentials: Credentials) -> str | None:
        if credentials is None or not credentials.credentials:
            raise _unauthorized("an API token is required (Authorization: Bearer <token>)")
        name = verify_token(store, credentials.credentials)
        if name is None:
            raise _unauthorized("the API token is not valid (wrong or revoked)")
        return name

    return bearer_token
