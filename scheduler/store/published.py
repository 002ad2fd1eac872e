"""Published pipelines: immutable versions, each endpoint's default version, and the snapshot of
every definition a run was made from.

Uniqueness is the database's job: a (pipeline, version) label is published once, so two racing
``publish`` commands end in one row and one clear refusal (``AlreadyExists``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from scheduler.core.clock import Clock
from scheduler.core.errors import NotFound
from scheduler.store.errors import AlreadyExists
from scheduler.store.models import EndpointRow, PipelineVersion, PublishedRow
from scheduler.store.records import PublishedRecord
from scheduler.store.sessions import Sessions

__all__ = ["AlreadyExists", "PublishedRecord", "PublishedRepository"]


class PublishedRepository:
    """Pipeline versions as run or published, and endpoints' defaults."""

    def __init__(self, sessions: Sessions, clock: Clock) -> None:
        self._sessions, self._clock = sessions, clock

    def ensure_pipeline_version(
        self,
        pipeline: str,
        content_hash: str,
        definition: dict[str, Any],
        version: str | None = None,
    ) -> int:
        """The id of this (pipeline, version, content) snapshot, recorded on first use."""
        wanted = select(PipelineVersion.id).where(
            PipelineVersion.pipeline == pipeline,
            PipelineVersion.content_hash == content_hash,
            PipelineVersion.version.is_(None)
            if version is None
            else PipelineVersion.version == version,
        )
        with self._sessions.read() as session:
            found = session.scalar(wanted)
        if found is not None:
            return found
        try:
            with self._sessions.write() as session:
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
            with self._sessions.read() as session:
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
            with self._sessions.write() as session:
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
            with self._sessions.write() as session:
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
        with self._sessions.read() as session:
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
        with self._sessions.read() as session:
            row = session.get(EndpointRow, pipeline)
            return row.default_version if row is not None else None

    def set_default_version(self, pipeline: str, version: str) -> None:
        """Point the endpoint at a published version (NotFound when it is not published)."""
        self.get_published(pipeline, version)
        now = self._clock.now()
        with self._sessions.write() as session:
            row = session.get(EndpointRow, pipeline)
            if row is None:
                session.add(EndpointRow(pipeline=pipeline, default_version=version, updated_at=now))
            else:
                row.default_version, row.updated_at = version, now
