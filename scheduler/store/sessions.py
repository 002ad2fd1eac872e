"""Short transactions on pipesched's database: each store call is one read or one write.

A write commits before ``write()`` returns, and on SQLite it opens with ``BEGIN IMMEDIATE`` (see
``engine.WRITE_OPTION``), so a crash never loses a change the caller was told about. Sessions are
fresh each time and hold no objects between calls: repositories hand out plain records only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final, cast

from sqlalchemy import CursorResult, Engine, Result
from sqlalchemy.orm import Session

from scheduler.core.crashpoints import crashpoint
from scheduler.store.engine import WRITE_OPTION

# Bulk UPDATEs need not synchronise the session: it holds no objects to bring up to date.
NO_SYNC: Final = {"synchronize_session": False}


class Sessions:
    """The session factory every repository of one store shares."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._write_engine = engine.execution_options(**{WRITE_OPTION: True})

    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self.engine) as session, session.begin():
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        with Session(self._write_engine) as session, session.begin():
            yield session
            session.flush()
            crashpoint("in_write_transaction")  # a kill -9 before the commit loses nothing reported


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE matched (``Session.execute`` is typed to return a plain ``Result``)."""
    return cast("CursorResult[Any]", result).rowcount
