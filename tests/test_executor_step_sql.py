"""The sql step through the real executor, against SQLite files and (when
PIPESCHED_TEST_DATABASE_URL is set) PostgreSQL: bind parameters, export, one transaction."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool

from scheduler.executor.runners.sqlscript import split_statements
from tests.projects import Project, make_project
from tests.test_executor import execute, steps_of

SALES = """
CREATE TABLE sales (region VARCHAR(20), amount REAL);
INSERT INTO sales VALUES ('north', 1.5), ('north', 2.5), ('north', 7), ('south', 9);
"""


def log_of(detail, step: str) -> str:
    return Path(detail.latest_attempts()[step].log_path).read_text()


def sql_pipeline(project: Project, url: str, script: str, *, export: bool = False) -> None:
    step = {"type": "sql", "url": url, "script": "script.sql", "allow_reuse": False}
    if export:
        step["export"] = "summary"
    project.pipeline(
        "query",
        {
            "parameters": {
                "min_amount": {"type": "float", "default": 2},
                "region": {"type": "str", "default": "north"},
                "top": {"type": "int", "default": 10},
            },
            "data": {"summary": {}},
            "steps": {"query": step},
        },
        {"script.sql": script},
    )


def tables(url: str) -> list[str]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        return sorted(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_binds_parameters_and_exports_the_last_result_set(tmp_path: Path, database_url: str):
    project = make_project(tmp_path / "project")
    script = (
        SALES
        + """
    SELECT 'not this one' AS other;
    SELECT region, COUNT(*) AS n, SUM(amount) AS total
    FROM sales
    WHERE amount >= :min_amount AND region = :region
    GROUP BY region
    LIMIT :top;
    """
    )
    sql_pipeline(project, database_url, script, export=True)
    detail = execute(project, "query", {"min_amount": "2.5", "region": "north"})
    step = steps_of(detail)["query"]
    assert step["status"] == "completed", log_of(detail, "query")
    exported = Path(step["outputs"]["summary"]) / "summary.csv"
    rows = list(csv.reader(exported.open(newline="")))
    assert rows[0] == ["region", "n", "total"]
    assert [(r[0], int(r[1]), float(r[2])) for r in rows[1:]] == [("north", 2, 9.5)]
    assert step["metrics"] == {"rows_exported": 1}
    assert "committed" in log_of(detail, "query")


def test_a_failing_statement_rolls_back_the_whole_script(tmp_path: Path, database_url: str):
    project = make_project(tmp_path / "project")
    script = SALES + "CREATE TABLE made_before (a INT);\nSELECT * FROM no_such_table;\n"
    sql_pipeline(project, database_url, script, export=True)
    detail = execute(project, "query")
    step = steps_of(detail)["query"]
    log = log_of(detail, "query")
    assert step["status"] == "failed"
    assert "statement 4/4 (script.sql line 5) failed" in log
    assert "no_such_table" in log.split("failed:", 1)[1]  # the database's own message
    assert "rolled back" in log
    assert tables(database_url) == []  # DDL included: nothing was committed
    assert not (Path(step["outputs"].get("summary", tmp_path / "x")) / "summary.csv").exists()


def test_a_missing_bind_parameter_is_named(tmp_path: Path):
    project = make_project(tmp_path)
    sql_pipeline(project, f"sqlite:///{tmp_path}/user.db", "SELECT :nope AS x;")
    detail = execute(project, "query")
    assert steps_of(detail)["query"]["status"] == "failed"
    assert "bind parameter 'nope'" in log_of(detail, "query")


def test_a_script_may_not_manage_the_transaction_itself(tmp_path: Path):
    project = make_project(tmp_path)
    sql_pipeline(
        project, f"sqlite:///{tmp_path}/user.db", "BEGIN;\nCREATE TABLE t (a INT);\nCOMMIT;"
    )
    detail = execute(project, "query")
    assert steps_of(detail)["query"]["status"] == "failed"
    assert "runs in one transaction of its own" in log_of(detail, "query")
    assert not (tmp_path / "user.db").exists() or tables(f"sqlite:///{tmp_path}/user.db") == []


# -- the statement splitter (pure) ----------------------------------------------------------------


def test_splitter_ignores_semicolons_in_quotes_comments_and_dollar_quotes():
    script = """-- a comment; not a statement
    INSERT INTO t VALUES (';', 'it''s; fine', "x;y"); /* c; */
    CREATE FUNCTION f() RETURNS int AS $body$ BEGIN RETURN 1; END; $body$ LANGUAGE plpgsql;
    SELECT 1 -- no final semicolon
    """
    found = [(s.line, s.sql.split()[0]) for s in split_statements(script)]
    assert found == [(2, "INSERT"), (3, "CREATE"), (4, "SELECT")]


def test_splitter_keeps_a_sqlite_trigger_body_whole():
    script = """
    CREATE TRIGGER audit AFTER INSERT ON t BEGIN
      INSERT INTO log VALUES (new.a);
      UPDATE counts SET n = n + 1;
    END;
    SELECT 2;
    """
    statements = split_statements(script)
    assert len(statements) == 2
    assert statements[0].sql.endswith("END")


@pytest.mark.parametrize(
    ("sql", "controls"),
    [("BEGIN;", True), ("commit", True), ("ROLLBACK;", True), ("ROLLBACK TO SAVEPOINT a;", False)],
)
def test_transaction_statements_are_recognised(sql: str, controls: bool):
    assert split_statements(sql)[0].controls_transaction is controls


def test_sqlite_binds_read_numbers_and_bools_as_such(tmp_path: Path):
    from scheduler.executor.runners.sql import bind_values

    given = {"a": "2.5", "b": "10", "c": "True", "d": "007", "e": "north"}
    assert bind_values(given, "sqlite") == {"a": 2.5, "b": 10, "c": True, "d": "007", "e": "north"}
    assert bind_values(given, "postgresql") == given  # the server types them from context
