"""What the store refuses: a name that is taken. Unknown ids raise ``core.errors.NotFound``."""

from __future__ import annotations

from scheduler.core.errors import PipeschedError


class AlreadyExists(PipeschedError):
    """That name is taken."""


class ScheduleExists(AlreadyExists):
    """A schedule of that name already exists."""


class StoreUnavailable(PipeschedError):
    """The store cannot be written now (its lock is lost, or it is fenced off): the caller holds
    what it owes and tries again once the store is back."""
