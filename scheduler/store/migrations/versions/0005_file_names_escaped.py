"""Dropped files' paths as escaped text (``scheduler.core.pathnames``): a backslash is now
written ``\\\\`` and a control character ``\\xHH``, so that a name that is not UTF-8 can be
stored too. Rows written before kept such names raw; rewrite them, or the next rescan would
take a file handled then for a new one. (Names that were not UTF-8 never reached the table.)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

from scheduler.core.pathnames import escape_name, unescape_name

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

_fires = sa.table("fires", sa.column("id", sa.Integer), sa.column("path", sa.String))


def upgrade() -> None:
    _rewrite(escape_name, longest_first=True)


def downgrade() -> None:
    # A name that is not UTF-8 cannot be written raw: it keeps its escaped form.
    _rewrite(
        lambda path: path if _surrogates(unescape_name(path)) else unescape_name(path),
        longest_first=False,
    )


def _surrogates(text: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def _rewrite(convert: Callable[[str], str], *, longest_first: bool) -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(_fires.c.id, _fires.c.path).where(_fires.c.path.is_not(None)))
    changed = [(i, convert(p)) for i, p in rows if convert(p) != p]
    # Escaping lengthens a path: longest first, the row that held a value another row is about
    # to take has already moved on (the unique key never sees two at once); unescaping, the
    # other way round.
    changed.sort(key=lambda row: len(row[1]), reverse=longest_first)
    for row_id, path in changed:
        bind.execute(sa.update(_fires).where(_fires.c.id == row_id).values(path=path))
