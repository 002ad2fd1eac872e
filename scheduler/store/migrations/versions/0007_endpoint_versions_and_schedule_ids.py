"""Pipeline endpoints as Azure ML has them, and schedules with a stable id.

An endpoint gains a stable id (its REST URL keeps working across a rename), a description, and
a default that may be a pipeline published under another name (``default_pipeline``; null: the
endpoint's own name). ``endpoint_versions`` numbers each endpoint's versions 0, 1, 2... apart
from the published pipelines' own labels; the versions published so far are numbered in the
order they were published. Each schedule gains an id that a rename keeps.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("pipeline_endpoints", sa.Column("endpoint_id", sa.String(), nullable=True))
    op.add_column("pipeline_endpoints", sa.Column("description", sa.String(), nullable=True))
    op.add_column("pipeline_endpoints", sa.Column("default_pipeline", sa.String(), nullable=True))
    op.add_column("schedules", sa.Column("schedule_id", sa.String(), nullable=True))
    op.create_table(
        "endpoint_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("endpoint_id", sa.String(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("pipeline", sa.String(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("added_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_endpoint_versions"),
        sa.UniqueConstraint(
            "endpoint_id", "number", name="uq_endpoint_versions_endpoint_id_number"
        ),
        sa.UniqueConstraint(
            "endpoint_id",
            "pipeline",
            "version",
            name="uq_endpoint_versions_endpoint_id_pipeline_version",
        ),
    )
    _fill_ids()


def _fill_ids() -> None:
    bind = op.get_bind()
    endpoints = sa.table(
        "pipeline_endpoints", sa.column("pipeline", sa.String), sa.column("endpoint_id", sa.String)
    )
    schedules = sa.table(
        "schedules", sa.column("name", sa.String), sa.column("schedule_id", sa.String)
    )
    published = sa.table(
        "published_pipelines",
        sa.column("id", sa.Integer),
        sa.column("pipeline", sa.String),
        sa.column("version", sa.String),
    )
    versions = sa.table(
        "endpoint_versions",
        sa.column("endpoint_id", sa.String),
        sa.column("number", sa.Integer),
        sa.column("pipeline", sa.String),
        sa.column("version", sa.String),
        sa.column("added_at", UTC_TIME),
    )
    ids = {}
    for (name,) in bind.execute(sa.select(endpoints.c.pipeline)).all():
        ids[name] = uuid.uuid4().hex
        bind.execute(
            endpoints.update().where(endpoints.c.pipeline == name).values(endpoint_id=ids[name])
        )
    for (name,) in bind.execute(sa.select(schedules.c.name)).all():
        bind.execute(
            schedules.update().where(schedules.c.name == name).values(schedule_id=uuid.uuid4().hex)
        )
    numbers: dict[str, int] = {}
    now = datetime.now(UTC)
    rows = bind.execute(
        sa.select(published.c.pipeline, published.c.version).order_by(published.c.id)
    ).all()
    for pipeline, version in rows:
        if pipeline not in ids:
            continue
        number = numbers.get(pipeline, 0)
        numbers[pipeline] = number + 1
        bind.execute(
            versions.insert().values(
                endpoint_id=ids[pipeline],
                number=number,
                pipeline=pipeline,
                version=version,
                added_at=now,
            )
        )


def downgrade() -> None:
    op.drop_table("endpoint_versions")
    with op.batch_alter_table("schedules") as batch:
        batch.drop_column("schedule_id")
    with op.batch_alter_table("pipeline_endpoints") as batch:
        batch.drop_column("default_pipeline")
        batch.drop_column("description")
        batch.drop_column("endpoint_id")
