"""The schema comes from Alembic, and the migrations match the models."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from coalesce_cloud.db import alembic_config, create_db_engine, run_migrations
from coalesce_cloud.models import Base


def test_migrations_build_exactly_the_models_schema(database_url: str) -> None:
    engine = create_db_engine(database_url)
    try:
        run_migrations(engine)
        run_migrations(engine)  # a second start changes nothing
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            assert context.get_current_revision() is not None
    finally:
        engine.dispose()


def test_migrations_downgrade_to_nothing_and_back(database_url: str) -> None:
    engine = create_db_engine(database_url)
    try:
        run_migrations(engine)
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        run_migrations(engine)
        assert {"devices", "meetings", "orgs"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
