"""The model registry's records: versions 1, 2, 3... of each model name, the files' path in the
registry's folder, tags, properties, and the run and step a model came from.

A version is taken in two places that must agree: the registry's folder, where a rename claims
``<name>/<version>/`` (so a step can register a model without the store), and this table, whose
unique (name, version) refuses a version twice. ``register_model`` reads the next version, has
the caller claim it (or a later one) in the folder, and records it, in one write transaction;
a version a step claimed is recorded afterwards with ``add_model``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from scheduler.core.clock import Clock
from scheduler.core.errors import NotFound
from scheduler.store.errors import AlreadyExists
from scheduler.store.jsonvalues import json_safe
from scheduler.store.models import ModelRow
from scheduler.store.records import ModelRecord
from scheduler.store.sessions import Sessions

_REGISTER_TRIES = 3


class VersionClaim(Protocol):
    """Files waiting to become a version of a model (``store.model_files.StagedModel``)."""

    def claim(self, first: int) -> tuple[int, str]:
        """Take the first free version from ``first`` on; (that version, the files' path)."""

    def release(self) -> None:
        """Give the claimed version back (its transaction failed); the files wait again."""


class ModelRepository:
    """Versions of registered models: recorded, looked up, listed."""

    def __init__(self, sessions: Sessions, clock: Clock) -> None:
        self._sessions, self._clock = sessions, clock

    def register_model(
        self,
        name: str,
        files: VersionClaim,
        *,
        tags: Mapping[str, Any] | None = None,
        properties: Mapping[str, Any] | None = None,
        description: str | None = None,
        run_id: str | None = None,
        step: str | None = None,
    ) -> ModelRecord:
        """Record ``files`` as the next version of ``name``: in one write transaction, the
        version after the store's latest is claimed in the registry's folder (or the first
        free one after it) and recorded. A version that a racing writer recorded first is
        given back and the next one tried."""
        for attempt in range(_REGISTER_TRIES):
            claimed = False
            try:
                with self._sessions.write() as session:
                    latest = session.scalar(
                        select(func.max(ModelRow.version)).where(ModelRow.name == name)
                    )
                    version, path = files.claim((latest or 0) + 1)
                    claimed = True
                    row = self._row(name, version, path, tags, properties, description)
                    row.run_id, row.step = run_id, step
                    session.add(row)
                    session.flush()
                    record = _record(row)
                return record
            except IntegrityError:
                files.release()
                if attempt == _REGISTER_TRIES - 1:
                    raise AlreadyExists(
                        f"model {name!r}: versions are being taken by others"
                    ) from None
            except BaseException:
                if claimed:
                    files.release()
                raise
        raise AssertionError("unreachable")

    def add_model(
        self,
        name: str,
        version: int,
        path: str,
        *,
        tags: Mapping[str, Any] | None = None,
        properties: Mapping[str, Any] | None = None,
        description: str | None = None,
        run_id: str | None = None,
        step: str | None = None,
    ) -> ModelRecord:
        """Record a version already claimed in the registry's folder (by a step).
        AlreadyExists when the store has that version of ``name``."""
        try:
            with self._sessions.write() as session:
                row = self._row(name, version, path, tags, properties, description)
                row.run_id, row.step = run_id, step
                session.add(row)
                session.flush()
                return _record(row)
        except IntegrityError as error:
            raise AlreadyExists(f"model {name!r} already has a version {version}") from error

    def get_model(self, name: str, version: int | None = None) -> ModelRecord:
        """Version ``version`` of ``name``, or its latest; NotFound naming what exists."""
        statement = select(ModelRow).where(ModelRow.name == name)
        if version is not None:
            statement = statement.where(ModelRow.version == version)
        with self._sessions.read() as session:
            row = session.scalars(statement.order_by(ModelRow.version.desc()).limit(1)).first()
            if row is not None:
                return _record(row)
            versions = list(
                session.scalars(
                    select(ModelRow.version).where(ModelRow.name == name).order_by(ModelRow.version)
                )
            )
        if not versions:
            raise NotFound(f"no model named {name!r}", hint="list them with: pipesched models")
        known = ", ".join(map(str, versions))
        raise NotFound(f"model {name!r} has no version {version}", hint=f"versions: {known}")

    def list_models(
        self,
        name: str | None = None,
        *,
        tags: Mapping[str, str | None] | None = None,
        properties: Mapping[str, str | None] | None = None,
        run_id: str | None = None,
        latest: bool = False,
    ) -> list[ModelRecord]:
        """Models by name, newest version first. ``tags`` and ``properties`` map a key to the
        value it must have (its text), or to None when any value will do; ``latest`` keeps
        each name's newest version only (before the tag filter, as Azure ML does)."""
        statement = select(ModelRow).order_by(ModelRow.name, ModelRow.version.desc())
        if name is not None:
            statement = statement.where(ModelRow.name == name)
        if run_id is not None:
            statement = statement.where(ModelRow.run_id == run_id)
        with self._sessions.read() as session:
            records = [_record(row) for row in session.scalars(statement)]
        if latest:
            newest: dict[str, ModelRecord] = {}
            for record in records:
                newest.setdefault(record.name, record)
            records = list(newest.values())
        return [
            r
            for r in records
            if _matches(r.tags, tags or {}) and _matches(r.properties, properties or {})
        ]

    def _row(
        self,
        name: str,
        version: int,
        path: str,
        tags: Mapping[str, Any] | None,
        properties: Mapping[str, Any] | None,
        description: str | None,
    ) -> ModelRow:
        return ModelRow(
            name=name,
            version=version,
            path=path,
            tags=json_safe(dict(tags or {})),
            properties=json_safe(dict(properties or {})),
            description=description,
            created_at=self._clock.now(),
        )


def _matches(values: Mapping[str, Any], wanted: Mapping[str, str | None]) -> bool:
    return all(
        key in values and (value is None or _text(values[key]) == value)
        for key, value in wanted.items()
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _record(row: ModelRow) -> ModelRecord:
    return ModelRecord(
        name=row.name,
        version=row.version,
        path=row.path,
        tags=dict(row.tags or {}),
        properties=dict(row.properties or {}),
        description=row.description,
        run_id=row.run_id,
        step=row.step,
        created_at=row.created_at,
    )
