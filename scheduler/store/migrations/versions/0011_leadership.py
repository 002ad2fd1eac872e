"""Several daemons on one store: the leadership row (epoch and lease), each daemon's heartbeat,
and the epoch of the leader that wrote each fire record.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    leadership = op.create_table(
        "leadership",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("holder", sa.String(), nullable=True),
        sa.Column("host", sa.String(), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("since", UTC_TIME, nullable=True),
        sa.Column("api_url", sa.String(), nullable=True),
        sa.Column("lease_until", UTC_TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_leadership"),
    )
    op.bulk_insert(leadership, [{"id": 1, "epoch": 0}])
    op.create_table(
        "daemon_heartbeats",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("host", sa.String(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", UTC_TIME, nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("heartbeat_at", UTC_TIME, nullable=False),
        sa.Column("lease_seconds", sa.Float(), nullable=False),
        sa.Column("schema_revision", sa.String(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("api_url", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_daemon_heartbeats"),
    )
    op.add_column("fires", sa.Column("epoch", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("fires") as batch:
        batch.drop_column("epoch")
    op.drop_table("daemon_heartbeats")
    op.drop_table("leadership")
