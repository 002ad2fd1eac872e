"""Runs by trigger and by kind of trigger, newest first: the web view's runs page filters by
either, and a LIKE on ``trigger`` could use no index (SQLite's LIKE ignores case), so a rare
kind read the whole history. ``trigger_kind`` holds what the trigger says before its first
``:``; existing runs get it here.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("trigger_kind", sa.String(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE runs SET trigger_kind = split_part(trigger, ':', 1)")
    else:
        op.execute(
            "UPDATE runs SET trigger_kind = CASE WHEN instr(trigger, ':') > 0 "
            "THEN substr(trigger, 1, instr(trigger, ':') - 1) ELSE trigger END"
        )
    op.create_index("ix_runs_trigger_kind_id", "runs", ["trigger_kind", "id"])
    op.create_index("ix_runs_trigger_id", "runs", ["trigger", "id"])


def downgrade() -> None:
    op.drop_index("ix_runs_trigger_id", table_name="runs")
    op.drop_index("ix_runs_trigger_kind_id", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("trigger_kind")
