"""pipesched's database: SQLAlchemy models, per-area repositories, records and Alembic migrations.

The only package that issues SQL against pipesched's own database. ``Store.open(url)`` gives a
store at the current schema; its methods hand out the plain records of ``scheduler.store.records``.

The names below load on first use, so that importing a light module of this package (the
records, or the standard-library reads of ``sqlite_reads``) never loads SQLAlchemy's ORM.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scheduler.core.ids import new_run_id
    from scheduler.store.errors import AlreadyExists, ScheduleExists
    from scheduler.store.store import Store

__all__ = ["AlreadyExists", "ScheduleExists", "Store", "new_run_id"]

_HOMES = {
    "AlreadyExists": "scheduler.store.errors",
    "ScheduleExists": "scheduler.store.errors",
    "Store": "scheduler.store.store",
    "new_run_id": "scheduler.core.ids",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
