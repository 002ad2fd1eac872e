"""pipesched's database: SQLAlchemy models, per-area repositories, records and Alembic migrations.

The only package that issues SQL against pipesched's own database. ``Store.open(url)`` gives a
store at the current schema; its methods hand out the plain records of ``scheduler.store.records``.
"""

from __future__ import annotations

from scheduler.core.ids import new_run_id
from scheduler.store.errors import AlreadyExists, ScheduleExists
from scheduler.store.store import Store

__all__ = ["AlreadyExists", "ScheduleExists", "Store", "new_run_id"]
