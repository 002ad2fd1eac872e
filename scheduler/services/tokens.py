"""API bearer tokens: shown once, stored as a SHA-256, compared in constant time.

A token reads ``pst_<id>_<secret>``: ``id`` (12 hex digits) is a public lookup key, so checking a
token is one indexed read and one ``hmac.compare_digest`` — no scan over every hash, and a wrong
token takes the same path as a right one. SHA-256 (not a slow password hash) is enough because
the secret is 256 random bits, not something a person chose.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

from scheduler.core.clock import iso
from scheduler.core.errors import PipeschedError
from scheduler.store import Store

PREFIX = "pst_"
_TOKEN = re.compile(r"^pst_([0-9a-f]{12})_([A-Za-z0-9_-]{20,})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
# Compared against when no token has the id, so an unknown id costs what a wrong secret costs.
_DUMMY_HASH = hashlib.sha256(b"pipesched: no such token").hexdigest()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(store: Store, name: str) -> str:
    """A new token named ``name``; the only time its secret is ever seen."""
    if not _NAME.fullmatch(name):
        raise PipeschedError(
            f"bad token name {name!r}",
            hint="letters, digits, '.', '_', '-' and '@', up to 100 characters",
        )
    token_id = secrets.token_hex(6)
    token = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    store.add_token(name, token_id, _digest(token))
    return token


def list_tokens(store: Store) -> list[dict[str, Any]]:
    """Every token ever created, revoked ones included: ``{name, created_at, last_used_at,
    revoked}`` (no secret and no hash)."""
    return [
        {
            "name": record.name,
            "created_at": iso(record.created_at),
            "last_used_at": iso(record.last_used_at),
            "revoked": record.revoked,
        }
        for record in store.list_token_records()
    ]


def revoke_token(store: Store, name: str) -> None:
    """Revoke the live token called ``name`` (NotFound when there is none)."""
    store.revoke_token(name)


def verify_token(store: Store, token: str | None) -> str | None:
    """The name of a live token equal to ``token``, else None (missing, malformed, wrong or
    revoked)."""
    found = live_token(store, token)
    return None if found is None else found[1]


def live_token(store: Store, token: str | None) -> tuple[str, str] | None:
    """``(token id, name)`` of a live token equal to ``token``, else None; marks it used."""
    match = _TOKEN.fullmatch(token or "")
    record = store.find_token(match.group(1)) if match else None
    expected = record.token_hash if record is not None else _DUMMY_HASH
    equal = hmac.compare_digest(_digest(token or ""), expected)
    if not equal or record is None or record.revoked:
        return None
    store.touch_token(record.token_id, record.last_used_at)
    return record.token_id, record.name


def token_still_live(store: Store, token_id: str) -> str | None:
    """The name of the token with this id while it is not revoked, else None: a session made
    from a token ends when the token is revoked."""
    record = store.find_token(token_id)
    if record is None or record.revoked:
        return None
    return record.name
