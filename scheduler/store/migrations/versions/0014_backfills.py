"""Backfills of a schedule over a range of nominal times, and what each time became.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | None = None
depends_on: str | None = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "backfills",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("schedule", sa.String(), nullable=False),
        sa.Column("range_from", UTC_TIME, nullable=False),
        sa.Column("range_to", UTC_TIME, nullable=False),
        sa.Column("max_concurrent", sa.Integer(), nullable=False),
        sa.Column("rerun", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("requested_by", sa.String(), nullable=True),
        sa.Column("owner_host", sa.String(), nullable=True),
        sa.Column("owner_pid", sa.Integer(), nullable=True),
        sa.Column("owner_start_ticks", sa.BigInteger(), nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.Column("finished_at", UTC_TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_backfills"),
    )
    op.create_index("ix_backfills_status", "backfills", ["status"])
    op.create_table(
        "backfill_times",
        sa.Column("backfill_id", sa.String(), nullable=False),
        sa.Column("nominal_time", UTC_TIME, nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("run_id", sa.String(), nullable=True),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["backfill_id"],
            ["backfills.id"],
            name="fk_backfill_times_backfill_id_backfills",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("backfill_id", "nominal_time", name="pk_backfill_times"),
    )
    op.create_index("ix_backfill_times_run_id", "backfill_times", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_backfill_times_run_id", table_name="backfill_times")
    op.drop_table("backfill_times")
    op.drop_index("ix_backfills_status", table_name="backfills")
    op.drop_table("backfills")
