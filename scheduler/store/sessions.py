"""Short transactions on pipesched's database: each store call is one read or one write.

A write commits before ``write()`` returns, and on SQLite it opens with ``BEGIN IMMEDIATE`` (see
``engine.WRITE_OPTION``), so a crash never loses a change the caller was told about. Sessions are
fresh each time and hold no objects between calls: repositories hand out plain records only.

Writes pass a gate: ``fence(reason)`` closes it, and every ``write()`` then raises
``StoreUnavailable`` until ``unfence()``; reads go on. The daemon fences its store when it may no
longer hold the store's lock, so nothing it writes can cross another daemon's work.

A leader among standby daemons also passes ``lead(epoch)``: each write then starts by reading
the leadership row ``FOR SHARE`` and goes on only while the epoch is still its own, so the
database itself refuses a write of a leader that has been replaced.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final, cast

from sqlalchemy import CursorResult, Engine, Result, select
from sqlalchemy.orm import Session

from scheduler.core.crashpoints import crashpoint
from scheduler.store.engine import WRITE_OPTION
from scheduler.store.errors import StoreUnavailable
from scheduler.store.models import LeadershipRow

# Bulk UPDATEs need not synchronise the session: it holds no objects to bring up to date.
NO_SYNC: Final = {"synchronize_session": False}


class Sessions:
    """The session factory every repository of one store shares."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._write_engine = engine.execution_options(**{WRITE_OPTION: True})
        # Read and set from any thread: one reference, swapped whole.
        self._fenced: str | None = None
        self._epoch: int | None = None  # the epoch this daemon leads, in standby mode

    @property
    def fenced(self) -> str | None:
        """Why writes are refused now, or None while they are let through."""
        return self._fenced

    def fence(self, reason: str) -> None:
        """Refuse every write from now on with ``StoreUnavailable(reason)``; reads go on."""
        self._fenced = reason

    def unfence(self) -> None:
        self._fenced = None

    @property
    def epoch(self) -> int | None:
        """The epoch this daemon leads (written into each fire record), or None."""
        return self._epoch

    def lead(self, epoch: int | None) -> None:
        """Check every write against this epoch from now on (None: no check)."""
        self._epoch = epoch

    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self.engine) as session, session.begin():
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        if (reason := self._fenced) is not None:
            raise StoreUnavailable(reason)
        with Session(self._write_engine) as session, session.begin():
            if (epoch := self._epoch) is not None:
                self._check_epoch(session, epoch)
            yield session
            session.flush()
            crashpoint("in_write_transaction")  # a kill -9 before the commit loses nothing reported

    @contextmanager
    def unfenced_write(self) -> Iterator[Session]:
        """A write past the gate and the epoch check: for the writes that keep or move the
        leadership itself, which carry their own condition on the epoch."""
        with Session(self._write_engine) as session, session.begin():
            yield session

    def _check_epoch(self, session: Session, epoch: int) -> None:
        current = session.scalar(
            select(LeadershipRow.epoch).where(LeadershipRow.id == 1).with_for_update(read=True)
        )
        if current != epoch:
            reason = f"not the leader: epoch {epoch} is over (the store is at epoch {current})"
            self._fenced = reason
            raise StoreUnavailable(reason)


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE matched (``Session.execute`` is typed to return a plain ``Result``)."""
    return cast("CursorResult[Any]", result).rowcount
