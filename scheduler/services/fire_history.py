"""Fire records as ``pipesched fires`` and the API list them, without loading the schedules'
definitions unless a name turns out to have no records (then the schedules file says whether a
daemon would know it, so a typo is not an empty list)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scheduler.definitions.config import Config
    from scheduler.store.reads import HistoryReads
    from scheduler.store.records import FireRecord


def list_fires(
    store: HistoryReads,
    schedule: str | None = None,
    *,
    limit: int = 20,
    config: Config | None = None,
) -> list[FireRecord]:
    """Fire records, newest first (``limit`` 0: all). A schedule with none that no daemon knows
    — not registered in the store, nor (given ``config``) in the schedules file — is
    UnknownSchedule, so a typo is not an empty list. A deleted API schedule keeps its records."""
    records = store.list_fires(schedule, limit=limit)
    if schedule is not None and not records:
        # lazy: the schedules' definitions load only to tell a typo from a quiet schedule
        from scheduler.services.schedules import UnknownSchedule, schedule_names

        known = set(store.schedule_states())
        if config is not None:
            known |= schedule_names(config, store)
        if schedule not in known:
            raise UnknownSchedule(schedule, known)
    return records
