"""Alembic's environment for pipesched.

At run time ``scheduler.store.migrate`` hands in an open connection (already in a transaction
and holding the migration lock). For developers, ``alembic -c scheduler/store/migrations/alembic.ini
revision --autogenerate -m "..."`` works against the URL in ``$PIPESCHED_DATABASE_URL``.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection

from scheduler.store.engine import make_engine
from scheduler.store.models import Base


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things: batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    url = os.environ.get("PIPESCHED_DATABASE_URL") or context.config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("set PIPESCHED_DATABASE_URL to the database to compare against")
    engine = make_engine(url)
    with engine.begin() as conn:
        run(conn)
    engine.dispose()
