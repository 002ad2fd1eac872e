"""API tokens: a SHA-256 of each secret, its public id, and when it was last used.

A token name is held by one live token at a time (a partial unique index), so two racing
``token create`` commands end in one row and one clear refusal; a revoked name can be used again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from scheduler.core.clock import Clock
from scheduler.core.errors import NotFound
from scheduler.store.errors import AlreadyExists
from scheduler.store.models import TokenRow
from scheduler.store.records import TokenRecord
from scheduler.store.sessions import NO_SYNC, Sessions, rowcount

# last_used_at is for humans ("used 3 days ago"): one write a minute per token at most, so an
# API under load does not turn every authenticated read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenRepository:
    """Creation, lookup, use and revocation of API tokens."""

    def __init__(self, sessions: Sessions, clock: Clock) -> None:
        self._sessions, self._clock = sessions, clock

    def add_token(self, name: str, token_id: str, token_hash: str) -> None:
        """Raises AlreadyExists when a live token has this name."""
        try:
            with self._sessions.write() as session:
                session.add(
                    TokenRow(
                        name=name,
                        token_id=token_id,
                        token_hash=token_hash,
                        created_at=self._clock.now(),
                    )
                )
        except IntegrityError as error:
            raise AlreadyExists(
                f"a token named '{name}' exists",
                hint=f"revoke it first (pipesched token revoke {name}) or choose another name",
            ) from error

    def list_token_records(self) -> list[TokenRecord]:
        with self._sessions.read() as session:
            rows = session.scalars(select(TokenRow).order_by(TokenRow.id))
            return [_token(row) for row in rows]

    def find_token(self, token_id: str) -> TokenRecord | None:
        with self._sessions.read() as session:
            row = session.scalars(select(TokenRow).where(TokenRow.token_id == token_id)).first()
            return _token(row) if row is not None else None

    def revoke_token(self, name: str) -> None:
        with self._sessions.write() as session:
            result = session.execute(
                update(TokenRow)
                .where(TokenRow.name == name, TokenRow.revoked_at.is_(None))
                .values(revoked_at=self._clock.now()),
                execution_options=NO_SYNC,
            )
            if rowcount(result) == 0:
                raise NotFound(f"no live token named '{name}'")

    def touch_token(self, token_id: str, last_used_at: datetime | None) -> None:
        """Note a use, at most once per LAST_USED_RESOLUTION (the caller passes what it read,
        so a token used a second ago costs no write transaction at all)."""
        now = self._clock.now()
        stale = now - LAST_USED_RESOLUTION
        if last_used_at is not None and last_used_at >= stale:
            return
        with self._sessions.write() as session:
            session.execute(
                update(TokenRow)
                .where(TokenRow.token_id == token_id)
                .where(TokenRow.last_used_at.is_(None) | (TokenRow.last_used_at < stale))
                .values(last_used_at=now),
                execution_options=NO_SYNC,
            )


def _token(row: TokenRow) -> TokenRecord:
    return TokenRecord(
        name=row.name,
        token_id=row.token_id,
        token_hash=row.token_hash,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked=row.revoked_at is not None,
    )
