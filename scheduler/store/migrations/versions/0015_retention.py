"""Retention: fires by run, and the counts of what prunes deleted.

A prune deletes (or detaches) the fire and ledger rows of each run it deletes, a few hundred
runs per transaction; without an index on ``fires.run_id`` every batch read the whole table
while it held the store. ``pruned_counts`` keeps, per pipeline and status (per schedule and
outcome for fires), how many rows prunes deleted: ``/metrics`` counts rows, and its counters
must never go down.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index("ix_fires_run_id", "fires", ["run_id"])
    op.create_table(
        "pruned_counts",
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "name", "outcome", name="pk_pruned_counts"),
    )


def downgrade() -> None:
    op.drop_table("pruned_counts")
    op.drop_index("ix_fires_run_id", table_name="fires")
