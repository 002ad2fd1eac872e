"""A schedule's fires of one outcome, newest settled first: a file-drop schedule's last file,
claims and skipped files are read on every schedules listing, and without this index each read
sorts or filters the schedule's whole ledger.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index(
        "ix_fires_schedule_outcome_updated_at_id",
        "fires",
        ["schedule", "outcome", "updated_at", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_fires_schedule_outcome_updated_at_id", table_name="fires")
