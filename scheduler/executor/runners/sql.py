"""The sql step's process: every statement of the script, in order, in ONE transaction.

- Statements are split by ``sqlscript.split_statements`` and run one by one through SQLAlchemy's
  ``text()``, so ``:name`` binds work on every database (the DBAPI's ``executescript`` would be
  SQLite-only and takes no parameters). ``:name`` inside a string literal is a bind too: write
  ``\\:name`` there; write ``CAST(:n AS INTEGER)`` rather than ``:n::int``.
- Bind values are the pipeline's parameters in their argv form. PostgreSQL (psycopg sends them
  untyped) and MySQL type a string from its context; SQLite does not (text sorts after every
  number), so for SQLite a value that reads as an integer, a decimal number or True/False is
  bound as one.
- SQLite: pysqlite opens no transaction before DDL, so the runner emits ``BEGIN`` itself (the
  recipe in SQLAlchemy's SQLite dialect notes): a failed script leaves no table behind either.
  A script may not contain BEGIN/COMMIT/ROLLBACK: the transaction is the step's. MySQL commits
  DDL implicitly whatever we do.
- Any error rolls everything back; the log shows the statement, its line and the database's
  message. With ``export``, the last statement that returned rows is written (header row first)
  to ``<export folder>/<data name>.csv``, renamed into place after the commit.
"""

from __future__ import annotations

import csv
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, CursorResult, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from scheduler.executor.runners import StepFailed, run_main, say, typed_value
from scheduler.executor.runners.sqlscript import Statement, split_statements
from scheduler.runtime import Run

FETCH = 1000


def bind_values(parameters: dict[str, str], dialect: str) -> dict[str, Any]:
    """The bind parameters for ``dialect`` (see the module's docstring for why SQLite differs)."""
    if dialect != "sqlite":
        return dict(parameters)
    return {name: typed_value(value) for name, value in parameters.items()}


def run_script(spec: dict[str, Any]) -> None:
    script = Path(spec["script"])
    statements = split_statements(script.read_text(encoding="utf-8"))
    for st in statements:
        if st.controls_transaction:
            raise StepFailed(
                f"{script.name} line {st.line}: '{st.summary(30)}' — the script runs in one "
                "transaction of its own; remove BEGIN/COMMIT/ROLLBACK"
            )
    # With secrets, the log shows the URL as written, each secret as ***, and never quotes it.
    masked: str | None = spec.get("url_masked")
    try:
        url = make_url(spec["url"])
    except (ArgumentError, ValueError) as exc:
        if masked is not None:
            raise StepFailed(f"'url' {masked} is not a SQLAlchemy URL") from None
        raise StepFailed(f"'url' is not a SQLAlchemy URL: {exc}") from None
    try:
        engine = create_engine(url, poolclass=NullPool)
    except (NoSuchModuleError, ImportError) as exc:
        raise StepFailed(f"no driver for {url.drivername} URLs here: {exc}") from None
    shown = masked if masked is not None else url.render_as_string(hide_password=True)
    if engine.dialect.name == "sqlite":
        _transactional_ddl(engine)
    binds = bind_values(spec["parameters"], engine.dialect.name)
    export = _Export(spec["export_dir"], spec["export_name"]) if spec.get("export_name") else None
    say(f"{script.name}: {len(statements)} statements against {shown}, in one transaction")
    try:
        conn = engine.connect()
    except SQLAlchemyError as exc:
        raise StepFailed(f"could not connect to {shown}: {_db_message(exc)}") from None
    try:
        _execute(conn, script, statements, binds, export)
    except BaseException:
        if export is not None:
            export.discard()
        raise
    finally:
        engine.dispose()
    say("committed")
    if export is not None:
        path, rows = export.publish()
        say(f"exported {rows} row{'s' if rows != 1 else ''} to {path}")
        Run.get_context().log("rows_exported", rows)


def _execute(
    conn: Connection,
    script: Path,
    statements: list[Statement],
    binds: dict[str, Any],
    export: _Export | None,
) -> None:
    total = len(statements)
    try:
        with conn, conn.begin():
            for st in statements:
                started = time.monotonic()
                try:
                    outcome = _consume(conn.execute(text(st.sql), binds), export)
                except SQLAlchemyError as exc:
                    _report_failure(script, st, total, exc)
                    raise _Failed(exc, st) from None
                took = (time.monotonic() - started) * 1000
                say(
                    f"  {st.number}/{total} line {st.line}: {st.summary()} -> {outcome} ({took:.0f} ms)"
                )
            if export is not None and not export.written:
                raise StepFailed(
                    f"export '{export.name}': no statement of {script.name} returned rows; "
                    "rolled back"
                )
    except _Failed as failed:
        say("rolled back: nothing the script did was committed")
        raise StepFailed(
            f"statement {failed.statement.number} ({script.name} line {failed.statement.line}) "
            f"failed: {(_db_message(failed.error).splitlines() or ['?'])[0]}"
        ) from None
    except SQLAlchemyError as exc:  # the commit itself
        raise StepFailed(f"commit failed, rolled back: {_db_message(exc)}") from None


class _Failed(Exception):
    def __init__(self, error: Exception, statement: Statement) -> None:
        super().__init__(str(error))
        self.error, self.statement = error, statement


def _transactional_ddl(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite: no BEGIN of its own, and no COMMIT before DDL
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")


def _consume(result: CursorResult[Any], export: _Export | None) -> str:
    if not result.returns_rows:
        count = result.rowcount
        return f"{count} row{'s' if count != 1 else ''} affected" if count >= 0 else "done"
    if export is None:
        count = sum(len(chunk) for chunk in iter(lambda: result.fetchmany(FETCH), []))
    else:
        count = export.write(result)
    return f"{count} row{'s' if count != 1 else ''}"


def _report_failure(script: Path, st: Statement, total: int, exc: Exception) -> None:
    say(f"statement {st.number}/{total} ({script.name} line {st.line}) failed:")
    for line in st.sql.splitlines()[:20]:
        say(f"    {line}")
    say(_db_message(exc))


def _db_message(exc: Exception) -> str:
    """The database's own words: the DBAPI error, without SQLAlchemy's SQL echo and link."""
    orig = getattr(exc, "orig", None)
    if orig is not None:
        return str(orig).strip()
    text = str(exc).split("\n(Background on this error", 1)[0]
    return text.split("\n[SQL:", 1)[0].strip()


class _Export:
    """The last result set, as CSV in a temporary file until the commit succeeds."""

    def __init__(self, folder: str, name: str) -> None:
        self.folder, self.name = Path(folder), name
        self.target = self.folder / f"{name}.csv"
        self._tmp: str | None = None
        self.rows = 0

    @property
    def written(self) -> bool:
        return self._tmp is not None

    def write(self, result: CursorResult[Any]) -> int:
        self.discard()  # an earlier result set: only the last one is kept
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(
            prefix=f".{self.name}.", suffix=".csv.tmp", dir=self.folder
        )
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(list(result.keys()))
            self.rows = 0
            while chunk := result.fetchmany(FETCH):
                writer.writerows(chunk)
                self.rows += len(chunk)
        return self.rows

    def publish(self) -> tuple[Path, int]:
        assert self._tmp is not None
        os.replace(self._tmp, self.target)
        self._tmp = None
        return self.target, self.rows

    def discard(self) -> None:
        if self._tmp is not None:
            Path(self._tmp).unlink(missing_ok=True)
            self._tmp = None


def main() -> None:
    run_main(run_script)


if __name__ == "__main__":
    main()
