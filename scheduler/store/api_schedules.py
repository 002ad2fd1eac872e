"""The store's side of schedules created through the API or SDK (``source: api``).

Such a schedule lives in the ``schedules`` row that also keeps its registration, override and
last fire: ``definition`` holds its schedules.yaml entry as JSON. The row's primary key (the
name) is what makes two racing creations end in one schedule and one refusal. Deleting one
removes the row but not its fire records, so its history stays readable, and a later schedule
of the same name starts afresh (a new first registration, no override).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scheduler.core.errors import NotFound
from scheduler.store.models import ScheduleRow
from scheduler.store.published import AlreadyExists
from scheduler.store.records import ScheduleState
from scheduler.store.schedules import _state

API = "api"


class ScheduleExists(AlreadyExists):
    """A schedule of that name already exists."""


class ApiScheduleStoreMixin:
    """Mixed into ``Store``; uses its ``_read``/``_write`` sessions and clock."""

    _clock: Any

    if TYPE_CHECKING:  # provided by Store

        def _read(self) -> AbstractContextManager[Session]: ...
        def _write(self) -> AbstractContextManager[Session]: ...

    def add_api_schedule(self, name: str, definition: dict[str, Any]) -> ScheduleState:
        """Keep a new API schedule, registered now. A row left by a schedule that is gone from
        schedules.yaml is taken over (its fires stay); another API schedule of that name is
        refused with ScheduleExists."""
        now = self._clock.now()
        try:
            with self._write() as session:
                row = session.get(ScheduleRow, name)
                if row is not None and row.source == API:
                    raise _exists(name)
                if row is None:
                    row = ScheduleRow(name=name, source=API, registered_at=now)
                    session.add(row)
                row.source, row.definition, row.registered_at = API, definition, now
                row.override = None
                row.last_fire_time = row.last_outcome = row.last_run_id = None
                session.flush()
                return _state(row)
        except IntegrityError as error:  # another process created it between get and insert
            raise _exists(name) from error

    def api_schedules(self) -> list[ScheduleState]:
        """Every API schedule, oldest first."""
        with self._read() as session:
            rows = session.scalars(
                select(ScheduleRow)
                .where(ScheduleRow.source == API)
                .order_by(ScheduleRow.registered_at, ScheduleRow.name)
            )
            return [_state(row) for row in rows]

    def get_api_schedule(self, name: str) -> ScheduleState:
        with self._read() as session:
            row = session.get(ScheduleRow, name)
            if row is None or row.source != API:
                raise NotFound(f"no schedule {name!r} created through the API")
            return _state(row)

    def delete_api_schedule(self, name: str, *, keep_registration: bool = False) -> None:
        """Forget an API schedule; its fire records stay. ``keep_registration``: a schedule of
        schedules.yaml now has this name, so the row stays as the file schedule's (its
        registration, override and last fire are that schedule's now)."""
        with self._write() as session:
            row = session.get(ScheduleRow, name)
            if row is None or row.source != API:
                raise NotFound(f"no schedule {name!r} created through the API")
            if keep_registration:
                row.source, row.definition = "file", None
            else:
                session.delete(row)


def _exists(name: str) -> ScheduleExists:
    return ScheduleExists(
        f"a schedule named '{name}' already exists (created through the API)",
        hint="pick another name, or delete that schedule first",
    )
