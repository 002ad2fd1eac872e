"""pipesched's database: SQLAlchemy models, per-area repositories, records and Alembic migrations.

The only package that issues SQL against pipesched's own database. ``Store.open(url)`` gives a
store at the current schema; its methods hand out the plain records of ``scheduler.store.records``.
The names below load on first use, so a module of this package that needs only the standard
library (``completion_reads``, read on every TAB) does not pay for SQLAlchemy.
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
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value
