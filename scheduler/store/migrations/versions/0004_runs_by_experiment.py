"""Runs by experiment, newest first: what the SDK's ``Experiment.get_runs()`` and
``GET /api/v1/runs?experiment=`` read.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index("ix_runs_experiment_id", "runs", ["experiment", "id"])


def downgrade() -> None:
    op.drop_index("ix_runs_experiment_id", table_name="runs")
