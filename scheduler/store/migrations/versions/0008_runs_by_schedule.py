"""Runs by schedule, newest first: what the web view's runs page filtered by schedule and a
schedule's own page read.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index("ix_runs_schedule_id", "runs", ["schedule", "id"])


def downgrade() -> None:
    op.drop_index("ix_runs_schedule_id", table_name="runs")
