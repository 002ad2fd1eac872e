"""Splitting a ``.sql`` script into statements, for the sql step.

Hand-written (about 60 lines) rather than sqlparse: sqlparse is not a dependency, and splitting
needs only a lexer that knows where a ``;`` does *not* end a statement. It understands
'single', "double" and `backtick` quotes (a doubled quote escapes itself), ``--`` and ``/* */``
comments, PostgreSQL's dollar quotes (``$$ ... $$``, ``$body$ ... $body$``), and SQLite's
``CREATE TRIGGER ... BEGIN ...; ...; END;`` bodies (through ``sqlite3.complete_statement``,
SQLite's own lexer). It does not understand backslash escapes inside strings (MySQL's
``'it\\'s'``): write ``'it''s'``.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

_DOLLAR = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")
_TRIGGER = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP\s+|TEMPORARY\s+)?TRIGGER\b", re.I)
_TRANSACTION = re.compile(
    r"(?:BEGIN|COMMIT|END|START\s+TRANSACTION|ROLLBACK(?!\s+(?:TRANSACTION\s+)?TO\b))\b\s*"
    r"(?:TRANSACTION|WORK|DEFERRED|IMMEDIATE|EXCLUSIVE)?\s*;?\s*$",
    re.I,
)


@dataclass(frozen=True)
class Statement:
    number: int  # 1-based position in the script
    line: int  # 1-based line of its first character
    sql: str

    @property
    def controls_transaction(self) -> bool:
        """BEGIN/COMMIT/ROLLBACK/END: the step owns the one transaction a script runs in."""
        return _TRANSACTION.match(self.sql) is not None

    def summary(self, width: int = 72) -> str:
        first = " ".join(self.sql.split())
        return first if len(first) <= width else first[: width - 3] + "..."


def split_statements(script: str) -> list[Statement]:
    """The statements of ``script`` in order, without comment-only pieces."""
    pieces: list[tuple[int, int]] = []  # (start of code, end) of each statement
    code_start: int | None = None
    code_end = 0  # just past the last character that is not blank or a comment
    i, n = 0, len(script)
    while i < n:
        c = script[i]
        if c in " \t\r\n":
            i += 1
            continue
        if script.startswith("--", i):
            end = script.find("\n", i)
            i = n if end < 0 else end + 1
            continue
        if script.startswith("/*", i):
            end = script.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        if code_start is None:
            if c == ";":  # an empty statement
                i += 1
                continue
            code_start = i
        if c in "'\"`":
            i = _after_quote(script, i, c)
        elif c == "$" and (m := _DOLLAR.match(script, i)) and not _word_before(script, i):
            end = script.find(m.group(0), m.end())
            i = n if end < 0 else end + len(m.group(0))
        elif c == ";":
            text = script[code_start : i + 1]
            if _TRIGGER.match(text) and not sqlite3.complete_statement(text):
                i += 1  # inside a trigger's BEGIN ... END
                continue
            pieces.append((code_start, i))
            code_start = None
            i += 1
        else:
            i += 1
        code_end = i
    if code_start is not None:
        pieces.append((code_start, code_end))
    return [
        Statement(number, script.count("\n", 0, start) + 1, script[start:end].strip())
        for number, (start, end) in enumerate(pieces, 1)
    ]


def _after_quote(script: str, i: int, quote: str) -> int:
    j = i + 1
    while True:
        end = script.find(quote, j)
        if end < 0:
            return len(script)
        if script.startswith(quote * 2, end):
            j = end + 2
            continue
        return end + 1


def _word_before(script: str, i: int) -> bool:
    """``a$b$`` is an identifier in PostgreSQL, not a dollar quote."""
    return i > 0 and (script[i - 1].isalnum() or script[i - 1] in "_$")
