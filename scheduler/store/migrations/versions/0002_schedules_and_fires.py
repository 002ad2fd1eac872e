"""Schedules (registration, overrides, last fire) and fire records.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("registered_at", UTC_TIME, nullable=False),
        sa.Column("override", sa.Boolean(), nullable=True),
        sa.Column("definition", sa.JSON(), nullable=True),
        sa.Column("last_fire_time", UTC_TIME, nullable=True),
        sa.Column("last_outcome", sa.String(), nullable=True),
        sa.Column("last_run_id", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_schedules"),
    )
    op.create_table(
        "fires",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schedule", sa.String(), nullable=False),
        sa.Column("nominal_time", UTC_TIME, nullable=True),
        sa.Column("path", sa.String(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=True),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("run_id", sa.String(), nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_fires"),
        sa.UniqueConstraint("schedule", "nominal_time", name="uq_fires_schedule_nominal_time"),
        sa.UniqueConstraint(
            "schedule", "path", "size", "mtime_ns", name="uq_fires_schedule_path_size_mtime_ns"
        ),
    )
    op.create_index("ix_fires_schedule_id", "fires", ["schedule", "id"])
    op.create_index("ix_fires_outcome", "fires", ["outcome"])


def downgrade() -> None:
    op.drop_index("ix_fires_outcome", table_name="fires")
    op.drop_index("ix_fires_schedule_id", table_name="fires")
    op.drop_table("fires")
    op.drop_table("schedules")
