"""Schedules as the store keeps them: first registration, enable/disable override, last fire,
and the definitions of schedules created through the API or SDK (``source: api``).

A schedule of schedules.yaml has a row from its first registration (intervals count from it).
An API schedule's row also holds its schedules.yaml entry as JSON in ``definition``; the row's
primary key (the name) is what makes two racing creations end in one schedule and one refusal.
Deleting one removes the row but not its fire records, so its history stays readable, and a
later schedule of the same name starts afresh (a new first registration, no override).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from scheduler.core.clock import Clock
from scheduler.core.errors import NotFound
from scheduler.store.errors import ScheduleExists
from scheduler.store.models import FireRow, RunRow, ScheduleRow
from scheduler.store.records import FireOutcome, ScheduleState
from scheduler.store.sessions import Sessions

API = "api"
FILE = "file"


class ScheduleRepository:
    """Registration, overrides and API-created definitions of schedules."""

    def __init__(self, sessions: Sessions, clock: Clock) -> None:
        self._sessions, self._clock = sessions, clock

    # -- every schedule ----------------------------------------------------------------------

    def register_schedules(self, sources: Mapping[str, str]) -> dict[str, ScheduleState]:
        """Record the first registration of each named schedule (name -> source); return all."""
        now = self._clock.now()
        with self._sessions.write() as session:
            known = set(session.scalars(select(ScheduleRow.name)))
            for name, source in sources.items():
                if name not in known:
                    session.add(_new_row(name, source, now))
        return self.schedule_states()

    def schedule_states(self) -> dict[str, ScheduleState]:
        with self._sessions.read() as session:
            return {row.name: _state(row) for row in session.scalars(select(ScheduleRow))}

    def set_override(self, name: str, enabled: bool | None, *, source: str = FILE) -> None:
        """Enable/disable a schedule until the opposite command (None clears the override)."""
        with self._sessions.write() as session:
            row = session.get(ScheduleRow, name)
            if row is None:
                row = _new_row(name, source, self._clock.now())
                session.add(row)
            row.override = enabled

    # -- schedules created through the API -------------------------------------------------

    def add_api_schedule(self, name: str, definition: dict[str, Any]) -> ScheduleState:
        """Keep a new API schedule, registered now. A row left by a schedule that is gone from
        schedules.yaml is taken over (its fires stay); another API schedule of that name is
        refused with ScheduleExists."""
        now = self._clock.now()
        try:
            with self._sessions.write() as session:
                row = session.get(ScheduleRow, name)
                if row is not None and row.source == API:
                    raise _exists(name)
                if row is None:
                    row = _new_row(name, API, now)
                    session.add(row)
                row.source, row.definition, row.registered_at = API, definition, now
                row.schedule_id = row.schedule_id or uuid.uuid4().hex
                row.override = None
                row.last_fire_time = row.last_outcome = row.last_run_id = None
                session.flush()
                return _state(row)
        except IntegrityError as error:  # another process created it between get and insert
            raise _exists(name) from error

    def api_schedules(self) -> list[ScheduleState]:
        """Every API schedule, oldest first."""
        with self._sessions.read() as session:
            rows = session.scalars(
                select(ScheduleRow)
                .where(ScheduleRow.source == API)
                .order_by(ScheduleRow.registered_at, ScheduleRow.name)
            )
            return [_state(row) for row in rows]

    def get_api_schedule(self, name: str) -> ScheduleState:
        with self._sessions.read() as session:
            row = session.get(ScheduleRow, name)
            if row is None or row.source != API:
                raise NotFound(f"no schedule {name!r} created through the API")
            return _state(row)

    def update_api_schedule(
        self, name: str, definition: dict[str, Any], *, new_name: str | None = None
    ) -> ScheduleState:
        """Replace an API schedule's definition, keeping its id, registration, override and
        last fire. Renamed (``new_name``), its fire records and the runs it started move to
        the new name with it; a name another schedule has is refused (ScheduleExists)."""
        try:
            with self._sessions.write() as session:
                row = session.get(ScheduleRow, name)
                if row is None or row.source != API:
                    raise NotFound(f"no schedule {name!r} created through the API")
                if new_name is not None and new_name != name:
                    if session.get(ScheduleRow, new_name) is not None:
                        raise ScheduleExists(
                            f"cannot rename schedule '{name}' to '{new_name}': a schedule "
                            f"named '{new_name}' already exists",
                            hint="pick another name, or delete that schedule first",
                        )
                    session.execute(
                        update(FireRow).where(FireRow.schedule == name).values(schedule=new_name)
                    )
                    session.execute(
                        update(RunRow).where(RunRow.schedule == name).values(schedule=new_name)
                    )
                    row.name = new_name
                row.definition = definition
                row.schedule_id = row.schedule_id or uuid.uuid4().hex
                session.flush()
                return _state(row)
        except IntegrityError as error:  # another process took the new name in between
            raise _exists(new_name or name) from error

    def delete_api_schedule(self, name: str, *, keep_registration: bool = False) -> None:
        """Forget an API schedule; its fire records stay. ``keep_registration``: a schedule of
        schedules.yaml now has this name, so the row stays as the file schedule's (its
        registration, override and last fire are that schedule's now)."""
        with self._sessions.write() as session:
            row = session.get(ScheduleRow, name)
            if row is None or row.source != API:
                raise NotFound(f"no schedule {name!r} created through the API")
            if keep_registration:
                row.source, row.definition = FILE, None
            else:
                session.delete(row)


def _state(row: ScheduleRow) -> ScheduleState:
    return ScheduleState(
        name=row.name,
        source=row.source,
        registered_at=row.registered_at,
        override=row.override,
        last_fire_time=row.last_fire_time,
        last_outcome=FireOutcome(row.last_outcome) if row.last_outcome is not None else None,
        last_run_id=row.last_run_id,
        definition=row.definition,
        schedule_id=row.schedule_id,
    )


def _new_row(name: str, source: str, now: Any) -> ScheduleRow:
    return ScheduleRow(name=name, source=source, registered_at=now, schedule_id=uuid.uuid4().hex)


def _exists(name: str) -> ScheduleExists:
    return ScheduleExists(
        f"a schedule named '{name}' already exists (created through the API)",
        hint="pick another name, or delete that schedule first",
    )
