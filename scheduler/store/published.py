"""Published pipelines: immutable versions, each endpoint's default version, and the snapshot of
every definition a run was made from.

Uniqueness is the database's job: a (pipeline, version) label is published once, so two racing
``publish`` commands end in one row and one clear refusal (``AlreadyExists``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from scheduler.core.clock import Clock
from scheduler.core.errors import NotFound
from scheduler.store.errors import AlreadyExists
from scheduler.store.models import EndpointRow, EndpointVersionRow, PipelineVersion, PublishedRow
from scheduler.store.records import PublishedRecord
from scheduler.store.sessions import Sessions

__all__ = [
    "AlreadyExists",
    "EndpointRecord",
    "EndpointVersionRecord",
    "PublishedRecord",
    "PublishedRepository",
]


@dataclass(frozen=True)
class EndpointVersionRecord:
    """Version ``number`` of an endpoint: published pipeline ``pipeline@version``."""

    number: int
    pipeline: str
    version: str


@dataclass(frozen=True)
class EndpointRecord:
    """A pipeline endpoint: its stable id, its versions (0, 1, 2...) and the default one."""

    name: str
    endpoint_id: str
    description: str | None
    default_pipeline: str
    default_version: str
    versions: tuple[EndpointVersionRecord, ...]

    @property
    def default_number(self) -> int | None:
        for entry in self.versions:
            if (entry.pipeline, entry.version) == (self.default_pipeline, self.default_version):
                return entry.number
        return None


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

    def pipeline_definition(self, pipeline: str, content_hash: str) -> dict[str, Any] | None:
        """The stored definition of a pipeline's content (as it ran), or None."""
        wanted = (
            select(PipelineVersion.definition)
            .where(
                PipelineVersion.pipeline == pipeline, PipelineVersion.content_hash == content_hash
            )
            .limit(1)
        )
        with self._sessions.read() as session:
            return session.scalar(wanted)

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
        # The pipeline's own endpoint numbers it next (the first version published is its
        # default); an endpoint renamed away is made again.
        self.add_endpoint_version(pipeline, pipeline, version, create=True)
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
            select(PublishedRow, EndpointRow.default_version, _other_default())
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
                    is_default=row.version == default and own_default is None,
                )
                for row, default, own_default in session.execute(statement)
            ]

    def get_default_version(self, pipeline: str) -> str | None:
        """The label of ``pipeline`` its own endpoint runs; None when it has no endpoint or
        the endpoint's default is a pipeline of another name (``endpoint_default``)."""
        with self._sessions.read() as session:
            row = session.get(EndpointRow, pipeline)
            if row is None or row.default_pipeline not in (None, pipeline):
                return None
            return row.default_version

    def endpoint_default(self, endpoint: str) -> tuple[str, str] | None:
        """(pipeline, label) that endpoint ``endpoint`` runs by default; None without one."""
        with self._sessions.read() as session:
            row = session.get(EndpointRow, endpoint)
            if row is None:
                return None
            return row.default_pipeline or row.pipeline, row.default_version

    def set_default_version(self, pipeline: str, version: str) -> None:
        """Point ``pipeline``'s own endpoint at one of its published versions (NotFound when it
        is not published); the version joins the endpoint when it is not one of its own."""
        self.set_endpoint_default(pipeline, pipeline, version, create=True)

    # -- endpoints ------------------------------------------------------------------------------

    def add_endpoint_version(
        self,
        endpoint: str,
        pipeline: str,
        version: str,
        *,
        create: bool = False,
        description: str | None = None,
    ) -> EndpointVersionRecord:
        """Number published ``pipeline@version`` as the endpoint's next version (0 for the
        first); one it already has keeps its number. ``create`` makes a missing endpoint with
        this version as its default; otherwise a missing endpoint is NotFound."""
        self.get_published(pipeline, version)
        for _ in range(5):  # a racing add took the number: count again
            try:
                with self._sessions.write() as session:
                    row = session.get(EndpointRow, endpoint)
                    if row is None:
                        if not create:
                            raise NotFound(f"no pipeline endpoint named '{endpoint}'")
                        row = EndpointRow(
                            pipeline=endpoint,
                            default_version=version,
                            default_pipeline=None if pipeline == endpoint else pipeline,
                            description=description,
                            endpoint_id=uuid.uuid4().hex,
                            updated_at=self._clock.now(),
                        )
                        session.add(row)
                        session.flush()
                    elif row.endpoint_id is None:
                        row.endpoint_id = uuid.uuid4().hex
                    endpoint_id = row.endpoint_id
                    found = session.scalar(
                        select(EndpointVersionRow).where(
                            EndpointVersionRow.endpoint_id == endpoint_id,
                            EndpointVersionRow.pipeline == pipeline,
                            EndpointVersionRow.version == version,
                        )
                    )
                    if found is not None:
                        return _version(found)
                    last = session.scalar(
                        select(func.max(EndpointVersionRow.number)).where(
                            EndpointVersionRow.endpoint_id == endpoint_id
                        )
                    )
                    added = EndpointVersionRow(
                        endpoint_id=endpoint_id,
                        number=0 if last is None else last + 1,
                        pipeline=pipeline,
                        version=version,
                        added_at=self._clock.now(),
                    )
                    session.add(added)
                    session.flush()
                    return _version(added)
            except IntegrityError:
                continue
        raise AlreadyExists(f"endpoint '{endpoint}' is being changed by another process")

    def set_endpoint_default(
        self, endpoint: str, pipeline: str, version: str, *, create: bool = False
    ) -> EndpointRecord:
        """Make published ``pipeline@version`` the endpoint's default (added to it first when
        it is not one of its versions)."""
        self.add_endpoint_version(endpoint, pipeline, version, create=create)
        with self._sessions.write() as session:
            row = session.get(EndpointRow, endpoint)
            if row is None:
                raise NotFound(f"no pipeline endpoint named '{endpoint}'")
            row.default_pipeline = None if pipeline == endpoint else pipeline
            row.default_version, row.updated_at = version, self._clock.now()
        return self.get_endpoint(endpoint)

    def rename_endpoint(self, endpoint: str, new_name: str) -> EndpointRecord:
        """Give an endpoint a new name; its id, versions and default stay. A name another
        endpoint has is refused (AlreadyExists)."""
        if new_name == endpoint:
            return self.get_endpoint(endpoint)
        try:
            with self._sessions.write() as session:
                row = session.get(EndpointRow, endpoint)
                if row is None:
                    raise NotFound(f"no pipeline endpoint named '{endpoint}'")
                if session.get(EndpointRow, new_name) is not None:
                    raise AlreadyExists(
                        f"a pipeline endpoint named '{new_name}' already exists",
                        hint="endpoint names are unique: pick another",
                    )
                row.default_pipeline = row.default_pipeline or row.pipeline
                row.pipeline, row.updated_at = new_name, self._clock.now()
        except IntegrityError as error:
            raise AlreadyExists(f"a pipeline endpoint named '{new_name}' already exists") from error
        return self.get_endpoint(new_name)

    def get_endpoint(
        self, name: str | None = None, *, endpoint_id: str | None = None
    ) -> EndpointRecord:
        """An endpoint by name or by id (NotFound)."""
        for record in self.list_endpoints():
            if (name is not None and record.name == name) or (
                endpoint_id is not None and record.endpoint_id == endpoint_id
            ):
                return record
        raise NotFound(f"no pipeline endpoint {name or endpoint_id!r}")

    def list_endpoints(self) -> list[EndpointRecord]:
        """Every endpoint by name, its versions by number."""
        with self._sessions.read() as session:
            rows = list(session.scalars(select(EndpointRow).order_by(EndpointRow.pipeline)))
            entries: dict[str, list[EndpointVersionRecord]] = {}
            for entry in session.scalars(
                select(EndpointVersionRow).order_by(EndpointVersionRow.number)
            ):
                entries.setdefault(entry.endpoint_id, []).append(_version(entry))
            return [
                EndpointRecord(
                    name=row.pipeline,
                    endpoint_id=row.endpoint_id or "",
                    description=row.description,
                    default_pipeline=row.default_pipeline or row.pipeline,
                    default_version=row.default_version,
                    versions=tuple(entries.get(row.endpoint_id or "", ())),
                )
                for row in rows
            ]


def _other_default() -> Any:
    """The endpoint's default pipeline when it is not the endpoint's own name, else null."""
    return func.nullif(
        func.coalesce(EndpointRow.default_pipeline, EndpointRow.pipeline), EndpointRow.pipeline
    )


def _version(row: EndpointVersionRow) -> EndpointVersionRecord:
    return EndpointVersionRecord(number=row.number, pipeline=row.pipeline, version=row.version)
