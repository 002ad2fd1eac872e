"""The time a run stands for: nominal time and data interval on runs.

A run recorded before this revision stands for when it was created.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | None = None
depends_on: str | None = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("nominal_time", UTC_TIME, nullable=True))
        batch.add_column(sa.Column("interval_start", UTC_TIME, nullable=True))
        batch.add_column(sa.Column("interval_end", UTC_TIME, nullable=True))
        batch.add_column(sa.Column("nominal_zone", sa.String(), nullable=True))
    op.execute("UPDATE runs SET nominal_time = created_at")


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("nominal_zone")
        batch.drop_column("interval_end")
        batch.drop_column("interval_start")
        batch.drop_column("nominal_time")
