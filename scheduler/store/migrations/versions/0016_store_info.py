"""What the store says about itself: which pipesched last migrated it, so that an older
pipesched that finds a schema it does not know can name the version it needs.

Keys and values, so that a later pipesched can add facts without a change an older one would
trip over.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "store_info",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("value", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_store_info"),
    )


def downgrade() -> None:
    op.drop_table("store_info")
