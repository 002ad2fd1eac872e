"""The store's publishing side: published versions, endpoints' default versions, API tokens.

Uniqueness is the database's job here too: a (pipeline, version) label is published once, and a
token name is held by one live token at a time, so two racing ``publish`` or ``token create``
commands end in one row and one clear refusal.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scheduler.core.errors import NotFound, PipeschedError
from scheduler.store.models import EndpointRow, PipelineVersion, PublishedRow, TokenRow

_NO_SYNC = {"synchronize_session": False}
# last_used_at is for humans ("used 3 days ago"): one write a minute per token at most, so an
# API under load does not turn every authenticated read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class AlreadyExists(PipeschedError):
    """That name is taken."""


@dataclass(frozen=True)
class PublishedRecord:
    pipeline: str
    version: str
    description: str | None
    content_hash: str
    snapshot_dir: str
    published_at: datetime
    is_default: bool


@dataclass(frozen=True)
class TokenRecord:
    name: str
    token_id: str
    token_hash: str
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool


class PublishedStoreMixin:
    """Mixed into ``Store``; uses its ``_read``/``_write`` sessions and clock."""

    _clock: Any

    if TYPE_CHECKING:  # provided by Store

        def _read(self) -> AbstractContextManager[Session]: ...
        def _write(self) -> AbstractContextManager[Session]: ...

    # -- published versions ------------------------------------------------------------------

    def ensure_pipeline_version(
        self, pipeline: str, content_hash: str, definition: dict, version: str | None = None
    ) -> int:
        """The id of this (pipeline, version, content) snapshot, recorded on first use."""
        wanted = select(PipelineVersion.id).where(
            PipelineVersion.pipeline == pipeline,
            PipelineVersion.content_hash == content_hash,
            PipelineVersion.version.is_(None)
            if version is None
            else PipelineVersion.version == version,
        )
        with self._read() as session:
            found = session.scalar(wanted)
        if found is not None:
            return found
        try:
            with self._write() as session:
                row = PipelineVersion(
                    pipeline=pipeline,
                    version=version,
                    content_hash=content_hash,
                    definition=definition,
                    created_at=self._clock.now(),
                )
                session.add(row)
                session.flush()
                return row.id
        except IntegrityError:  # another process recorded it in between
            with self._read() as session:
                return session.scalars(wanted).one()

    def add_published(
        self,
        *,
        pipeline: str,
        version: str,
        description: str | None,
        content_hash: str,
        snapshot_dir: str,
    ) -> PublishedRecord:
        """Record a published version; the pipeline's first one becomes its endpoint's default.
        Raises AlreadyExists when the label is taken."""
        now = self._clock.now()
        try:
            with self._write() as session:
                session.add(
                    PublishedRow(
                        pipeline=pipeline,
                        version=version,
                        description=description,
                        content_hash=content_hash,
                        snapshot_dir=snapshot_dir,
                        published_at=now,
                    )
                )
        except IntegrityError as error:
            raise AlreadyExists(
                f"pipeline '{pipeline}' already has a published version '{version}'",
                hint="published versions never change; publish under a new --version",
            ) from error
        try:  # insert-or-ignore: the first version published wins the endpoint
            with self._write() as session:
                if session.get(EndpointRow, pipeline) is None:
                    session.add(
                        EndpointRow(pipeline=pipeline, default_version=version, updated_at=now)
                    )
        except IntegrityError:
            pass  # another first publish got there in between
        return self.get_published(pipeline, version)

    def get_published(self, pipeline: str, version: str) -> PublishedRecord:
        found = self.list_published(pipeline, version=version)
        if not found:
            raise NotFound(f"pipeline '{pipeline}' has no published version '{version}'")
        return found[0]

    def list_published(
        self, pipeline: str | None = None, *, version: str | None = None
    ) -> list[PublishedRecord]:
        """Published versions by pipeline, then in publishing order."""
        statement = (
            select(PublishedRow, EndpointRow.default_version)
            .outerjoin(EndpointRow, EndpointRow.pipeline == PublishedRow.pipeline)
            .order_by(PublishedRow.pipeline, PublishedRow.id)
        )
        if pipeline is not None:
            statement = statement.where(PublishedRow.pipeline == pipeline)
        if version is not None:
            statement = statement.where(PublishedRow.version == version)
        with self._read() as session:
            return [
                PublishedRecord(
                    pipeline=row.pipeline,
                    version=row.version,
                    description=row.description,
                    content_hash=row.content_hash,
                    snapshot_dir=row.snapshot_dir,
                    published_at=row.published_at,
                    is_default=row.version == default,
                )
                for row, default in session.execute(statement)
            ]

    def get_default_version(self, pipeline: str) -> str | None:
        with self._read() as session:
            row = session.get(EndpointRow, pipeline)
            return row.default_version if row is not None else None

    def set_default_version(self, pipeline: str, version: str) -> None:
        """Point the endpoint at a published version (NotFound when it is not published)."""
        self.get_published(pipeline, version)
        now = self._clock.now()
        with self._write() as session:
            row = session.get(EndpointRow, pipeline)
            if row is None:
                session.add(EndpointRow(pipeline=pipeline, default_version=version, updated_at=now))
            else:
                row.default_version, row.updated_at = version, now

    # -- API tokens --------------------------------------------------------------------------

    def add_token(self, name: str, token_id: str, token_hash: str) -> None:
        """Raises AlreadyExists when a live token has this name."""
        try:
            with self._write() as session:
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
        with self._read() as session:
            rows = session.scalars(select(TokenRow).order_by(TokenRow.id))
            return [_token(row) for row in rows]

    def find_token(self, token_id: str) -> TokenRecord | None:
        with self._read() as session:
            row = session.scalars(select(TokenRow).where(TokenRow.token_id == token_id)).first()
            return _token(row) if row is not None else None

    def revoke_token(self, name: str) -> None:
        with self._write() as session:
            result = session.execute(
                update(TokenRow)
                .where(TokenRow.name == name, TokenRow.revoked_at.is_(None))
                .values(revoked_at=self._clock.now()),
                execution_options=_NO_SYNC,
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFound(f"no live token named '{name}'")

    def touch_token(self, token_id: str, last_used_at: datetime | None) -> None:
        """Note a use, at most once per LAST_USED_RESOLUTION (the caller passes what it read,
        so a token used a second ago costs no write transaction at all)."""
        now = self._clock.now()
        stale = now - LAST_USED_RESOLUTION
        if last_used_at is not None and last_used_at >= stale:
            return
        with self._write() as session:
            session.execute(
                update(TokenRow)
                .where(TokenRow.token_id == token_id)
                .where(TokenRow.last_used_at.is_(None) | (TokenRow.last_used_at < stale))
                .values(last_used_at=now),
                execution_options=_NO_SYNC,
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
