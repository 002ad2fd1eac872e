"""Fires by run: a prune deletes (or detaches) the fire and ledger rows of each run it
deletes, a few hundred runs per transaction; without an index every batch read the whole
``fires`` table while it held the store.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index("ix_fires_run_id", "fires", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_fires_run_id", table_name="fires")
