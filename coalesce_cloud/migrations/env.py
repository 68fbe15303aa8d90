"""Alembic environment: run on the connection handed over by ``coalesce_cloud.db.run_migrations``, or on
``sqlalchemy.url`` when Alembic's own command line runs it (``alembic -c coalesce_cloud/alembic.ini ...``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from coalesce_cloud.db import create_db_engine
from coalesce_cloud.models import Base


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url (alembic -x or alembic.ini) to run migrations by hand")
    engine = create_db_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


_main()
